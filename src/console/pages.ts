import type { Principal } from '../access/principal';
import { ALL_ORGS } from '../access/principal';

/** Text for HTML: every character that could open markup or an attribute is escaped. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The console's pages are shells: the server writes the frame (navigation,
 * who is signed in, the page's containers) and /assets/console.js fills
 * them from the console API and keeps them live. No inline script or
 * style: the Content-Security-Policy forbids both.
 */
export const CONTENT_SECURITY_POLICY = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
};

export type PageName = 'runs' | 'run' | 'dead-letters' | 'actions' | 'action';

function frame(title: string, body: string, principal?: Principal, page?: PageName, data: Record<string, string> = {}): string {
  const attrs = Object.entries(data)
    .map(([k, v]) => ` data-${k}="${escapeHtml(v)}"`)
    .join('');
  const nav = principal
    ? `<nav aria-label="Main"><a href="/"${page === 'runs' || page === 'run' ? ' aria-current="page"' : ''}>Runs</a>` +
      `<a href="/actions"${page === 'actions' || page === 'action' ? ' aria-current="page"' : ''}>Self-service</a>` +
      `<a href="/dead-letters"${page === 'dead-letters' ? ' aria-current="page"' : ''}>Dead letters</a></nav>` +
      `<div class="who"><span title="signed in as">${escapeHtml(principal.clientId)}</span>` +
      `<span class="org">${principal.orgId === ALL_ORGS ? 'all orgs' : escapeHtml(principal.orgId)}</span>` +
      `<form method="post" action="/logout"><button type="submit" class="link">Sign out</button></form></div>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · action-router</title>
<link rel="stylesheet" href="/assets/console.css">
<link rel="icon" href="data:,">
<script src="/assets/console.js" defer></script>
</head>
<body${page ? ` data-page="${page}"` : ''}${attrs}${principal?.orgId === ALL_ORGS ? ' data-admin="true"' : ''}>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><a class="brand" href="/">action-router</a>${nav}</header>
<main id="main" tabindex="-1">
${body}
</main>
</body>
</html>
`;
}

/** How the sign-in page offers to sign in: the provider (OIDC), client credentials, or both. */
export interface SignInChoices {
  provider: string | null;
  clientSignIn: boolean;
}

export function loginPage(error: string | null, next: string, choices: SignInChoices = { provider: null, clientSignIn: true }): string {
  const provider = choices.provider
    ? `<p><a class="button sso" href="/login/oidc?next=${encodeURIComponent(next)}">Sign in with ${escapeHtml(choices.provider)}</a></p>`
    : '';
  if (!choices.clientSignIn) {
    return frame('Sign in', `<section class="login">
<h1>Sign in</h1>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
${provider}
</section>`);
  }
  return frame(
    'Sign in',
    `<section class="login">
<h1>Sign in</h1>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
${provider}
${choices.provider ? '<p class="hint">Or, for an API client (API_CLIENTS_FILE):</p>' : '<p>Use the client id and secret of an API client (API_CLIENTS_FILE).</p>'}
<form method="post" action="/login">
<input type="hidden" name="next" value="${escapeHtml(next)}">
<label for="clientId">Client id</label>
<input id="clientId" name="clientId" autocomplete="username" required maxlength="256" autofocus>
<label for="clientSecret">Client secret</label>
<input id="clientSecret" name="clientSecret" type="password" autocomplete="current-password" required maxlength="4096">
<button type="submit">Sign in</button>
</form>
</section>`,
  );
}

const STATUSES = ['WAITING_FOR_APPROVAL', 'IN_PROGRESS', 'SUCCESS', 'FAILURE', 'DECLINED'];
const TYPES = ['KAFKA', 'WEBHOOK', 'GITHUB', 'GITLAB'];

function options(values: string[]): string {
  return values.map((v) => `<option value="${v}">${v.replace(/_/g, ' ').toLowerCase()}</option>`).join('');
}

export function runsPage(principal: Principal): string {
  const org =
    principal.orgId === ALL_ORGS ? `<div class="field"><label for="f-org">Org</label><input id="f-org" name="org" placeholder="any"></div>` : '';
  return frame(
    'Runs',
    `<h1 class="visually-hidden">Runs</h1>
<section id="overview" class="overview" aria-label="Overview" aria-live="off"></section>
<form id="filters" class="filters" role="search" aria-label="Filter runs">
<div class="field"><label for="f-status">Status</label><select id="f-status" name="status"><option value="">any</option>${options(STATUSES)}</select></div>
<div class="field"><label for="f-action">Action</label><input id="f-action" name="action" placeholder="any"></div>
${org}
<div class="field"><label for="f-type">Invocation</label><select id="f-type" name="type"><option value="">any</option>${options(TYPES)}</select></div>
<div class="field check"><input id="f-active" name="active" type="checkbox" value="true"><label for="f-active">Active only</label></div>
<div class="field grow"><label for="f-q">Search</label><input id="f-q" name="q" type="search" placeholder="run id, entity, external id"></div>
</form>
<p id="live-status" class="live" role="status"></p>
<div class="table-wrap">
<table id="runs" class="runs">
<caption class="visually-hidden">Runs, newest first</caption>
<thead><tr><th scope="col">Status</th><th scope="col">Action</th><th scope="col" class="c-org">Org</th><th scope="col" class="c-type">Invocation</th>
<th scope="col" class="c-entity">Entity</th><th scope="col">Started</th><th scope="col" class="c-dur">Duration</th><th scope="col" class="c-label">Last label</th><th scope="col" class="c-links">Links</th></tr></thead>
<tbody></tbody>
</table>
</div>
<nav class="pager" aria-label="Pages"><button type="button" id="prev">Newer</button><span id="range"></span><button type="button" id="next">Older</button></nav>`,
    principal,
    'runs',
  );
}

export function runPage(principal: Principal, runId: string): string {
  return frame(
    `Run ${runId}`,
    `<p class="back"><a href="/">← All runs</a></p>
<article id="run" aria-busy="true"><h1>Run <code>${escapeHtml(runId)}</code></h1></article>`,
    principal,
    'run',
    { 'run-id': runId },
  );
}

export function deadLettersPage(principal: Principal): string {
  return frame(
    'Dead letters',
    `<h1>Dead letters</h1>
<section id="reasons" class="reasons" aria-label="Counts by reason"></section>
<div id="resend-bar" class="resend-bar"></div>
<p id="live-status" class="live" role="status"></p>
<div class="table-wrap">
<table id="letters" class="letters">
<caption class="visually-hidden">Dead letters, newest first</caption>
<thead><tr><th scope="col">Time</th><th scope="col">Reason</th><th scope="col">Error</th><th scope="col">Run</th><th scope="col" class="c-org">Org</th><th scope="col" class="c-src">Source</th><th scope="col">Size</th><th scope="col">Re-send</th></tr></thead>
<tbody></tbody>
</table>
</div>
<nav class="pager" aria-label="Pages"><button type="button" id="more">Older</button></nav>`,
    principal,
    'dead-letters',
  );
}

/** The self-service page: the actions this principal may run (filled by console.js). */
export function actionsPage(principal: Principal): string {
  return frame(
    'Self-service',
    `<h1>Self-service</h1>
<p class="hint">The actions you may run. Each opens a form made from its inputs.</p>
<ul id="actions" class="actions" aria-busy="true"></ul>`,
    principal,
    'actions',
  );
}

/** One action's form (built by console.js from its inputs); `again` is the run "Run again" repeats. */
export function actionPage(principal: Principal, actionId: string, again: string | null): string {
  return frame(
    `Run ${actionId}`,
    `<p class="back"><a href="/actions">← All actions</a></p>
<section id="action" aria-busy="true"><h1>Run <code>${escapeHtml(actionId)}</code></h1></section>`,
    principal,
    'action',
    { 'action-id': actionId, ...(again ? { again } : {}) },
  );
}

/**
 * After the provider's callback: the session cookie is SameSite=Strict,
 * which a browser leaves out of the redirect chain that began at the
 * provider's site; a navigation from this page is same-site and carries it.
 */
export function signedInPage(next: string): string {
  return frame(
    'Signed in',
    `<meta http-equiv="refresh" content="0;url=${escapeHtml(next)}">
<section class="login"><h1>Signed in</h1><p><a href="${escapeHtml(next)}">Continue</a></p></section>`,
  );
}

/**
 * Signed out here; on to the provider to end the session there too. A
 * page, not a redirect: the sign-out is a form, and the Content-Security-
 * Policy's form-action keeps a form's redirects on this site.
 */
export function signedOutPage(providerUrl: string, provider: string): string {
  return frame(
    'Signed out',
    `<meta http-equiv="refresh" content="0;url=${escapeHtml(providerUrl)}">
<section class="login"><h1>Signed out</h1><p>Signed out here. <a href="${escapeHtml(providerUrl)}">Sign out at ${escapeHtml(provider)} too</a>.</p></section>`,
  );
}
