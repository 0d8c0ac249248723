/**
 * The project's layers, checked by `npm run lint` (depcruise src).
 * Lower layers never import higher ones, and nothing imports in a circle:
 *   model, errors, log, net, config fragments   (what everything may use)
 *   codec, kafka, catalog, status, metrics,     (formats and connections)
 *   mapping                                     (jq)
 *   invokers                                    (backends)
 *   store                                       (the run store and its service)
 *   router                                      (the consume loop and its stages)
 *   approvals                                   (a RunGate for the router, on the store)
 *   api, console, http                          (what people and backends call)
 *   app, cli, doctor, demo, dev                 (composition and tools)
 */
const below = (name, forbidden) => ({
  name: `${name}-imports-upward`,
  severity: 'error',
  comment: `${name} is below ${forbidden.join(', ')}: it must not import them`,
  from: { path: `^src/${name}` },
  to: { path: `^src/(${forbidden.join('|')})` },
});

const TOP = ['app\\.ts', 'cli', 'doctor\\.ts', 'demo\\.ts', 'dev/', 'index\\.ts'];

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: the modules in it cannot be understood, tested or loaded one at a time.',
      from: {},
      to: { circular: true },
    },
    below('model/', ['mapping/', 'codec/', 'kafka/', 'catalog/', 'status/', 'metrics/', 'invokers/', 'store/', 'router/', 'approvals/', 'api/', 'console/', 'http/', 'config/config', 'access/', ...TOP]),
    below('net/', ['mapping/', 'codec/', 'kafka/', 'catalog/', 'status/', 'metrics/', 'invokers/', 'store/', 'router/', 'approvals/', 'api/', 'console/', 'http/', 'config/config', ...TOP]),
    below('access/', ['codec/', 'kafka/', 'invokers/', 'store/', 'router/', 'approvals/', 'api/', 'console/', 'http/', ...TOP]),
    below('(codec|kafka|catalog|status|metrics|mapping)/', ['invokers/', 'store/', 'router/', 'approvals/', 'api/', 'console/', 'http/', 'config/config', ...TOP]),
    below('invokers/', ['store/', 'router/', 'approvals/', 'api/', 'console/', 'http/', ...TOP]),
    below('store/', ['router/', 'approvals/', 'api/', 'console/', 'http/', ...TOP]),
    below('router/', ['store/', 'approvals/', 'api/', 'console/', 'http/', ...TOP]),
    below('approvals/', ['api/', 'console/', 'http/', ...TOP]),
    below('api/', ['console/', 'http/', ...TOP]),
    // config composes the fragments its parts own (invokers', kafka's, the registry client's options).
    below('config/', ['store/', 'router/', 'approvals/', 'api/', 'console/', 'http/', ...TOP]),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
