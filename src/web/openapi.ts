// GET /api/v1/openapi.json: the OpenAPI 3.0 description of conchd's HTTP
// API, served without a login so that tools can read it. Built once.

import { MAX_MATCH, STATES } from './api-consoles.js';
import { MAX_LINES, MAX_TAIL } from './log-query.js';
import { EVENT_STREAM_DEFAULTS } from './api-events.js';
import { COOKIE } from './web-auth.js';
import { sendJson } from './http-util.js';
import type { Router } from './router.js';
import type { WebContext } from './web-context.js';

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown): unknown => ({ 'application/json': { schema } });
const errorReply = (description: string): unknown => ({ description, content: json(ref('Error')) });

/** the error replies every authenticated route may give */
const COMMON_ERRORS = {
  '400': errorReply('Bad request: the message says what is wrong'),
  '401': errorReply('Not logged in, or an invalid or revoked token'),
  '403': errorReply('A cookie session without its X-CSRF-Token header on a POST'),
  '404': errorReply('No such console, or one the user may not monitor (the two are not told apart)'),
};

const NAME_PARAM = { name: 'name', in: 'path', required: true, description: 'console name', schema: { type: 'string' } };

function action(right: string, summary: string, conflict: string): unknown {
  return {
    post: {
      summary,
      description: `Needs the \`${right}\` right on the console. Audited (action \`${right}\`); a refusal is audited as \`denied\` with \`missing: "${right}"\`.`,
      tags: ['consoles'],
      parameters: [NAME_PARAM],
      responses: {
        '200': { description: 'Done', content: json(ref('ActionResult')) },
        ...COMMON_ERRORS,
        '403': errorReply(`The user lacks the \`${right}\` right: \`Permission denied: USER has no ${right} right on console [NAME]\` (or a missing CSRF header)`),
        '409': errorReply(conflict),
      },
    },
  };
}

const SOCKET_DESCRIPTION = `A WebSocket (upgrade a GET) attached to the console, with the rights, notices and refusals of the conman protocol.

Query: \`mode=monitor|attach|join|force\` (default \`attach\`). monitor needs the \`monitor\` right; attach and join \`attach\`; force \`force\` (it lets go of the other writers, and takes an IPMI console's SOL back from a holder outside conch). A plain attach to a console someone writes to is refused as busy.

On connect the server sends the console's recent output (replay) as one binary frame, then a text frame \`{"type":"hello","console":NAME,"mode":"monitor"|"write","state":STATE}\`.

Server to client: binary frames are console output, \`<ConMan>\` notices included (joined by, stolen by, connection to the device lost, …); text frames are JSON: \`{"type":"mode","mode":…}\` after a change, \`{"type":"error","message":…}\`, \`{"type":"closed","reason":"stolen"|"removed"}\` before a close.

Client to server: binary frames are keystrokes (a monitor's are dropped); text frames are JSON: \`{"type":"input","data":STRING}\`, \`{"type":"break"}\` (needs write access and the \`break\` right), \`{"type":"mode","mode":"monitor"|"join"|"force"}\`, \`{"type":"replay"}\`, \`{"type":"resize","cols":N,"rows":N}\` (accepted; consoles have no window size).

Close codes: 4403 permission denied, 4409 busy, 4404 no such console, 4001 stolen by a force, 4002 console removed by a reload, 4400 bad request. A reader slower than the console loses its own output, with a notice saying how much, and never delays the log or other clients. A refusal before the upgrade is an HTTP error with a JSON body (401, 404, 400). A browser's WebSocket carrying the session cookie must come from the server's own origin.`;

const EVENTS_DESCRIPTION = `Server-Sent Events (text/event-stream), one per change, only for consoles the user may monitor:

- \`event: state\` \`{"type":"state","console":NAME,"state":"up"|"connecting"|"backoff"|"down","since":ISO,"error":STRING|null}\`
- \`event: notice\` \`{"type":"notice","console":NAME,"text":STRING}\` (device notices such as an IPMI SOL taken over by another client, and its resume)
- \`event: client\` \`{"type":"client","console":NAME,"action":"attach"|"detach"|"mode","client":{"user":…,"transport":…,"mode":"monitor"|"write"|"broadcast"}}\`
- \`event: console\` \`{"type":"console","console":NAME,"action":"added"|"removed"}\` (a reload)

A comment \`: keepalive\` comes every ${EVENT_STREAM_DEFAULTS.keepaliveMs / 1000} s. A client that falls more than ${EVENT_STREAM_DEFAULTS.bufferBytes / 1024 / 1024} MiB behind gets \`event: overflow\` and the stream ends: reconnect and fetch GET /api/v1/consoles again (events are not replayed). At most ${EVENT_STREAM_DEFAULTS.maxStreams} streams are open per daemon (503 beyond).`;

function document(): unknown {
  return {
    openapi: '3.0.3',
    info: {
      title: 'conchd API',
      version: '1',
      description:
        'The consoles of a conchd daemon: list and state, logs, break/reset/force, live events and a WebSocket terminal. Every route but login, logout, session and this document needs a login: a session cookie from POST /api/v1/login (POSTs then need the X-CSRF-Token header), or `Authorization: Bearer TOKEN` (tokens: `conchd token create NAME -u USER`). Without a users file, loopback clients need no login (user `anonymous`). The access rules decide what each user may see and do; a console the user may not monitor does not exist for it. Errors are JSON `{"error": MESSAGE, "status": CODE}`.',
    },
    servers: [{ url: '/' }],
    tags: [{ name: 'session' }, { name: 'consoles' }, { name: 'events' }, { name: 'metrics' }],
    security: [{ bearer: [] }, { cookie: [] }],
    paths: {
      '/api/v1/session': {
        get: {
          summary: 'Who is logged in, and the CSRF token of a cookie session',
          tags: ['session'],
          security: [],
          responses: { '200': { description: 'The session', content: json(ref('Session')) } },
        },
      },
      '/api/v1/login': {
        post: {
          summary: 'Log in with a password (users file); sets the session cookie',
          tags: ['session'],
          security: [],
          requestBody: {
            required: true,
            content: json({ type: 'object', required: ['user', 'password'], properties: { user: { type: 'string', maxLength: 128 }, password: { type: 'string', maxLength: 1024 } } }),
          },
          responses: {
            '200': {
              description: `Logged in: the \`${COOKIE}\` cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) is set`,
              content: json({ type: 'object', properties: { user: { type: 'string' }, csrf: { type: 'string', description: 'send as X-CSRF-Token on POSTs' } } }),
            },
            '400': errorReply('A body that is not JSON, or a missing field'),
            '401': errorReply('Wrong user or password'),
            '413': errorReply('A body over 64 KiB'),
            '415': errorReply('Not application/json'),
          },
        },
      },
      '/api/v1/logout': {
        post: {
          summary: 'End the session (clears the cookie)',
          tags: ['session'],
          security: [],
          responses: { '200': { description: 'Logged out', content: json({ type: 'object', properties: { ok: { type: 'boolean' } } }) } },
        },
      },
      '/api/v1/consoles': {
        get: {
          summary: 'The consoles the user may see, with counts by state',
          description: 'In natural order (n1, n2, n10). `counts` cover the consoles the user may see that match `match=`, before the `state=` filter.',
          tags: ['consoles'],
          parameters: [
            {
              name: 'match',
              in: 'query',
              description: `POSIX extended regular expression matching the whole console name, case-insensitive (the dialect of \`conch -r\`); at most ${MAX_MATCH} characters. A bad one is a 400 naming the problem.`,
              schema: { type: 'string' },
            },
            {
              name: 'state',
              in: 'query',
              description: `comma-separated states to list: ${STATES.join(', ')}`,
              schema: { type: 'string', example: 'up,backoff' },
            },
          ],
          responses: { '200': { description: 'The consoles', content: json(ref('ConsoleList')) }, ...COMMON_ERRORS },
        },
      },
      '/api/v1/consoles/{name}': {
        get: {
          summary: 'One console',
          tags: ['consoles'],
          parameters: [NAME_PARAM],
          responses: { '200': { description: 'The console', content: json(ref('Console')) }, ...COMMON_ERRORS },
        },
      },
      '/api/v1/consoles/{name}/log': {
        get: {
          summary: "The console's current log file, streamed",
          description:
            'Needs the `monitor` right; audited. `since`/`until` select lines by their `YYYY-MM-DD HH:MM:SS` stamps (logopts="timestamp"), else by the `log at` / `log opened at` marks conchd writes (server timestamp=), a mark dating the lines after it; times in the logs are the server\'s local time. `tail`/`lines` then take the end of that range. The `x-log-range` header gives `bytes START-END/SIZE` of the file. On a node of a cluster the console\'s history is split between the nodes that held it: the pieces of every live node are gathered in time order (tail/lines are then the end of the whole history), `x-log-range` describes this node\'s own file (absent if it has none), `x-log-nodes` names the nodes whose pieces are in, and `x-log-missing` the live nodes that did not answer, with why.',
          tags: ['consoles'],
          parameters: [
            NAME_PARAM,
            { name: 'tail', in: 'query', description: `the last BYTES bytes (at most ${MAX_TAIL})`, schema: { type: 'integer', minimum: 0, maximum: MAX_TAIL } },
            { name: 'lines', in: 'query', description: `the last N lines (at most ${MAX_LINES}); not with tail`, schema: { type: 'integer', minimum: 0, maximum: MAX_LINES } },
            { name: 'since', in: 'query', description: 'ISO 8601 time: lines from then on', schema: { type: 'string', format: 'date-time' } },
            { name: 'until', in: 'query', description: 'ISO 8601 time: lines up to then', schema: { type: 'string', format: 'date-time' } },
            { name: 'download', in: 'query', description: '1: as an attachment named NAME.log', schema: { type: 'string', enum: ['1'] } },
          ],
          responses: {
            '200': {
              description: 'The log text',
              headers: {
                'x-log-range': { description: "`bytes START-END/SIZE`: the range of this node's log file", schema: { type: 'string' } },
                'x-log-nodes': { description: 'a cluster node: the nodes whose pieces of the history are in, comma-separated, oldest first', schema: { type: 'string' } },
                'x-log-missing': { description: 'a cluster node: live nodes that did not answer, `NODE (why)`, comma-separated', schema: { type: 'string' } },
              },
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
            ...COMMON_ERRORS,
            '400': errorReply('Bad parameters, or since/until on a log with neither stamps nor marks'),
            '404': errorReply('No such console, one the user may not monitor, or a console with no log (file)'),
          },
        },
      },
      '/api/v1/consoles/{name}/break': action('break', 'Send a serial break', 'The console is not up'),
      '/api/v1/consoles/{name}/reset': action('reset', 'Run the reset command (server resetcmd=) for the console', 'No resetcmd is configured'),
      '/api/v1/consoles/{name}/force': action(
        'force',
        "Take an IPMI console's SOL back from a holder outside conch",
        'The console is not an IPMI console (only SOL can be held elsewhere; to take a console from another conch client open its stream with mode=force)',
      ),
      '/api/v1/consoles/{name}/stream': {
        get: {
          summary: 'WebSocket terminal on the console',
          description: SOCKET_DESCRIPTION,
          tags: ['consoles'],
          parameters: [NAME_PARAM, { name: 'mode', in: 'query', schema: { type: 'string', enum: ['monitor', 'attach', 'join', 'force'], default: 'attach' } }],
          responses: { '101': { description: 'Switching protocols: the WebSocket is open' }, ...COMMON_ERRORS },
        },
      },
      '/api/v1/events': {
        get: {
          summary: 'Live console events (Server-Sent Events)',
          description: EVENTS_DESCRIPTION,
          tags: ['events'],
          responses: {
            '200': { description: 'The event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
            '401': COMMON_ERRORS['401'],
            '503': errorReply('Too many event streams open'),
          },
        },
      },
      '/api/v1/openapi.json': {
        get: { summary: 'This document', tags: ['session'], security: [], responses: { '200': { description: 'OpenAPI 3.0 document', content: json({ type: 'object' }) } } },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics',
          description: 'The Prometheus text exposition format: per console (state, bytes, reconnects, SOL takeovers, attached clients) and per daemon (clients by transport, log write errors, IPMI, event loop, process, configuration reloads). No label per user or client.',
          tags: ['metrics'],
          responses: { '200': { description: 'Metrics', content: { 'text/plain; version=0.0.4': { schema: { type: 'string' } } } } },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'a token from `conchd token create NAME -u USER`' },
        cookie: { type: 'apiKey', in: 'cookie', name: COOKIE, description: 'from POST /api/v1/login; POSTs also need the X-CSRF-Token header' },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error', 'status'],
          properties: { error: { type: 'string', description: 'what is wrong, in words' }, status: { type: 'integer' } },
        },
        Session: {
          type: 'object',
          properties: {
            user: { type: 'string', nullable: true },
            auth: { type: 'string', nullable: true, enum: ['password', 'token', 'none', null] },
            loginRequired: { type: 'boolean' },
            csrf: { type: 'string', nullable: true },
          },
        },
        Client: {
          type: 'object',
          required: ['user', 'host', 'transport', 'mode', 'since', 'idleMs'],
          properties: {
            user: { type: 'string' },
            host: { type: 'string' },
            transport: { type: 'string', enum: ['conman', 'tls', 'web', 'cluster'] },
            mode: { type: 'string', enum: ['monitor', 'write', 'broadcast'] },
            since: { type: 'string', format: 'date-time' },
            idleMs: { type: 'integer', description: 'ms since the client last sent anything' },
          },
        },
        Console: {
          type: 'object',
          required: ['name', 'type', 'state', 'since', 'retryAt', 'lastError', 'label', 'detail', 'clients'],
          properties: {
            name: { type: 'string' },
            type: { type: 'string', enum: ['telnet', 'unix', 'serial', 'process', 'test', 'ipmi', 'ssh'] },
            state: { type: 'string', enum: [...STATES] },
            since: { type: 'string', format: 'date-time', description: 'when it entered this state' },
            retryAt: { type: 'string', format: 'date-time', nullable: true, description: 'in backoff: the next attempt' },
            lastError: { type: 'string', nullable: true },
            label: { type: 'string', description: 'the device as notices name it' },
            detail: { type: 'string', nullable: true, description: 'device state beyond up/down, e.g. "SOL held elsewhere since …"' },
            node: { type: 'string', nullable: true, description: 'a cluster (docs/cluster.md): the node that runs the console, null when none does now; absent without a cluster' },
            nodeAddr: { type: 'string', nullable: true, description: "a cluster: that node's conman address host:port" },
            clients: { type: 'array', items: ref('Client') },
          },
        },
        ConsoleList: {
          type: 'object',
          required: ['consoles', 'counts'],
          properties: {
            consoles: { type: 'array', items: ref('Console') },
            counts: {
              type: 'object',
              required: [...STATES, 'total'],
              properties: Object.fromEntries([...STATES, 'total'].map((s) => [s, { type: 'integer' }])),
            },
          },
        },
        ActionResult: {
          type: 'object',
          properties: { ok: { type: 'boolean' }, console: { type: 'string' }, action: { type: 'string', enum: ['break', 'reset', 'force'] } },
        },
      },
    },
  };
}

export function register(router: Router, _ctx: WebContext): void {
  const doc = document();
  router.add('GET', '/api/v1/openapi.json', ({ res }) => sendJson(res, 200, doc, { 'cache-control': 'public, max-age=300' }), { public: true });
}

/** The document (for tests). */
export const openApiDocument = document;
