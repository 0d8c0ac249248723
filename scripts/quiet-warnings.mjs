// Imported first by the scripts that run kafkajs (the local broker's
// readiness check, the benchmark, the image test). kafkajs arms its request
// queue's timer with a negative delay; Node 24 prints a
// TimeoutNegativeWarning each time, as bin/action-router.js explains. That
// one is dropped; every other warning is printed as Node prints it.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'TimeoutNegativeWarning') return;
  process.stderr.write(`(node:${process.pid}) ${warning.name}: ${warning.message}\n`);
});
