#!/usr/bin/env node
// The test OpenID Provider of SAW broker's end-to-end tests and demo lab.
//
// A thin wrapper around `oidc-provider` (pinned in package.json): device flow, the built-in
// development login page (ANY password is accepted: loopback tests and demos only),
// back-channel logout and revocation. It never reaches out to the network.
//
//   node tests/idp/idp.mjs --port PORT [--host 127.0.0.1] [--client-id saw-broker]
//        [--backchannel-logout-uri URL] [--users FILE.json] [--admin-resource URI]
//        [--test-endpoints] [--device-interval SECONDS]
//
// Prints exactly one line `READY http://HOST:PORT` on stdout once listening; everything else
// goes to stderr. --users names a JSON object { "login": { "groups": [...], "name": "...",
// "email": "..." }, ... } that replaces the built-in users (alice, bob, carol, admin,
// user1..user99).
//
// --admin-resource URI (default urn:saw:admin): a device login that asks for this resource
// (`resource=URI`) gets an RFC 9068 JWT access token for it (aud URI, typ at+jwt) carrying the
// user's groups: what the broker's admin HTTP API takes.
// --test-endpoints adds POST /test/end-session?login=NAME: ends every IdP session of that
// account exactly as the end_session endpoint does with logout=yes (back-channel logout to
// each client of the session, then the session is destroyed). Tests only.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import process from 'node:process';

// Never go through a proxy nor resolve anything remote: the IdP only answers.
for (const v of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy']) {
	delete process.env[v];
}

function usage(msg) {
	if (msg)
		process.stderr.write(`idp: ${msg}\n`);
	process.stderr.write('usage: idp.mjs --port PORT [--host 127.0.0.1] [--client-id ID] ' +
		'[--backchannel-logout-uri URL] [--users FILE.json] [--admin-resource URI] ' +
		'[--test-endpoints] [--device-interval SECONDS]\n');
	process.exit(2);
}

function parseArgs(argv) {
	const opts = { host: '127.0.0.1', port: undefined, clientId: 'saw-broker', bclUri: undefined,
		users: undefined, adminResource: 'urn:saw:admin', testEndpoints: false,
		deviceInterval: 1 };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const val = () => {
			if (i + 1 >= argv.length)
				usage(`${a} needs a value`);
			return argv[++i];
		};
		switch (a) {
		case '--port': opts.port = Number(val()); break;
		case '--host': opts.host = val(); break;
		case '--client-id': opts.clientId = val(); break;
		case '--backchannel-logout-uri': opts.bclUri = val(); break;
		case '--users': opts.users = val(); break;
		case '--admin-resource': opts.adminResource = val(); break;
		case '--test-endpoints': opts.testEndpoints = true; break;
		case '--device-interval': opts.deviceInterval = Number(val()); break;
		case '-h': case '--help': usage(); break;
		default: usage(`unknown argument ${a}`);
		}
	}
	// No --port 0: the issuer must name the port before the server listens.
	if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535)
		usage('--port PORT is required (1..65535)');
	return opts;
}

const opts = parseArgs(process.argv.slice(2));

// Built-in users. Any login is accepted by the dev login page; unknown ones get no groups.
const builtinUsers = {
	alice: { groups: ['saw-users', 'developers'], name: 'Alice Example' },
	bob: { groups: ['developers'], name: 'Bob Example' },
	carol: { groups: ['saw-users'], name: 'Carol Example' },
	admin: { groups: ['saw-users', 'saw-admins'], name: 'Admin Example' },
};
for (let n = 1; n <= 99; n++)
	builtinUsers[`user${n}`] = { groups: ['saw-users'], name: `Test User ${n}` };

let users = builtinUsers;
if (opts.users) {
	try {
		users = JSON.parse(readFileSync(opts.users, 'utf8'));
		if (typeof users !== 'object' || users === null || Array.isArray(users))
			throw new Error('the file must hold a JSON object keyed by login name');
	} catch (err) {
		process.stderr.write(`idp: cannot use users file ${opts.users}: ${err.message}\n`);
		process.exit(2);
	}
}

function accountClaims(login) {
	const u = Object.prototype.hasOwnProperty.call(users, login) ? users[login] : {};
	return {
		sub: login,
		preferred_username: login,
		name: u.name ?? login,
		email: u.email ?? `${login}@example.test`,
		groups: Array.isArray(u.groups) ? u.groups : [],
	};
}

// Fresh signing keys each start: RS256 (what the client asks for) plus an ES256 key so that
// the broker's JWKS handling sees more than one key.
//
// The keys come from the openssl command, not from crypto.generateKeyPairSync: on Node 20 a
// garbage collection that finalises the key-generation job while the new key is being
// exported (its mutex held) deadlocks the main thread, about one start in fifty
// (node::crypto::KeyGenJob::~KeyGenJob waiting on the key's mutex). Keys parsed from PEM
// never had a job.
function opensslKey(args) {
	const pem = execFileSync('openssl', ['genpkey', ...args], {
		stdio: ['ignore', 'pipe', 'pipe'],
		timeout: 30000,
	});
	return createPrivateKey(pem).export({ format: 'jwk' });
}

function makeJwks() {
	let rsa;
	let ec;
	try {
		rsa = opensslKey(['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']);
		ec = opensslKey(['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
	} catch (err) {
		process.stderr.write(`idp: openssl genpkey failed (${err.message}); using node's key ` +
			'generation, which can hang on Node 20\n');
		rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
			.export({ format: 'jwk' });
		ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
			.export({ format: 'jwk' });
	}
	const tag = randomBytes(4).toString('hex');
	return {
		keys: [
			{ ...rsa, kid: `rsa-${tag}`, use: 'sig', alg: 'RS256' },
			{ ...ec, kid: `ec-${tag}`, use: 'sig', alg: 'ES256' },
		],
	};
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// Self-contained pages (the stock ones import a web font from the Internet). The form markup
// passed in by oidc-provider is kept as is; tests/tools/saw-approve relies on its fields.
function page(title, body) {
	return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:25px auto;max-width:360px}</style></head>
<body><h1>${esc(title)}</h1>
${body}
</body></html>`;
}

const deviceFlowPages = {
	async userCodeInputSource(ctx, form, out, err) {
		let msg = '<p>Enter the code displayed on your device</p>';
		if (err && (err.userCode || err.name === 'NoCodeError'))
			msg = '<p class="error">The code you entered is incorrect. Try again</p>';
		else if (err && err.name === 'AbortedError')
			msg = '<p class="error" id="aborted">The Sign-in request was interrupted (aborted)</p>';
		else if (err)
			msg = `<p class="error">There was an error processing your request: ${esc(err.name)}</p>`;
		ctx.body = page('Sign-in', `${msg}
${form}
<button type="submit" form="op.deviceInputForm">Continue</button>`);
	},
	async userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
		const display = client.clientName || client.clientId;
		ctx.body = page('Confirm Device', `<p><strong>${esc(display)}</strong></p>
<p>The following code should be displayed on your device: <code>${esc(userCode)}</code></p>
${form}
<button autofocus type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">[ Abort ]</button>`);
	},
	async successSource(ctx) {
		ctx.body = page('Sign-in Success',
			'<p id="success">Your sign-in was successful, you can now close this page.</p>');
	},
};

const { default: Provider, errors } = await import('oidc-provider');

const client = {
	client_id: opts.clientId,
	client_name: 'SAW broker',
	token_endpoint_auth_method: 'none',
	grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
	redirect_uris: [],
	response_types: [],
	id_token_signed_response_alg: 'RS256',
};
if (opts.bclUri) {
	client.backchannel_logout_uri = opts.bclUri;
	client.backchannel_logout_session_required = true;
}

const issuer = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;

const configuration = {
	clients: [client],
	jwks: makeJwks(),
	cookies: {
		keys: [randomBytes(32).toString('base64url')],
		// Plain HTTP on loopback: never mark cookies Secure (the browser-less approver
		// would not send them back).
		long: { httpOnly: true, sameSite: 'lax', secure: false },
		short: { httpOnly: true, sameSite: 'lax', secure: false },
	},
	claims: {
		openid: ['sub'],
		profile: ['preferred_username', 'name'],
		email: ['email'],
		groups: ['groups'],
	},
	scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
	conformIdTokenClaims: false,
	features: {
		devInteractions: { enabled: true },
		deviceFlow: { enabled: true, ...deviceFlowPages },
		backchannelLogout: { enabled: true },
		revocation: { enabled: true },
		introspection: { enabled: false },
		rpInitiatedLogout: { enabled: true },
		resourceIndicators: {
			enabled: true,
			async useGrantedResource() {
				return true;
			},
			async getResourceServerInfo(ctx, resourceIndicator) {
				if (resourceIndicator !== opts.adminResource)
					throw new errors.InvalidTarget();
				return {
					scope: 'admin',
					audience: resourceIndicator,
					accessTokenFormat: 'jwt',
					accessTokenTTL: 3600,
					jwt: { sign: { alg: 'RS256' } },
				};
			},
		},
	},
	// Back-channel logouts go to the broker on loopback. oidc-provider's SSRF guard (its own
	// dispatcher) refuses special-use addresses: right for a real IdP, wrong for this one.
	fetch(url, options) {
		const { dispatcher, ...rest } = options;
		return globalThis.fetch(url, rest);
	},
	async extraTokenClaims(ctx, token) {
		// The admin API decides on the user's groups: put them into the JWT access token.
		if (token.kind !== 'AccessToken' || !token.accountId)
			return undefined;
		return { groups: accountClaims(token.accountId).groups,
			preferred_username: token.accountId };
	},
	enabledJWA: {
		idTokenSigningAlgValues: ['RS256', 'ES256'],
	},
	ttl: {
		AccessToken: 3600,
		DeviceCode: 600,
		IdToken: 3600,
		Interaction: 600,
		Session: 24 * 3600,
		Grant: 24 * 3600,
		RefreshToken: 24 * 3600,
	},
	async findAccount(ctx, id) {
		if (typeof id !== 'string' || id.length === 0 || id.length > 256)
			return undefined;
		return {
			accountId: id,
			async claims() {
				return accountClaims(id);
			},
		};
	},
	async renderError(ctx, out, error) {
		ctx.type = 'html';
		ctx.body = page('Error', `<p id="error">${esc(out.error)}: ${esc(out.error_description ?? '')}</p>`);
	},
};

let provider;
try {
	provider = new Provider(issuer, configuration);
} catch (err) {
	process.stderr.write(`idp: configuration rejected: ${err.stack || err}\n`);
	process.exit(1);
}
provider.proxy = false;

for (const ev of ['server_error', 'grant.error', 'backchannel.error', 'interaction.error']) {
	provider.on(ev, (...args) => {
		const err = args.find((a) => a instanceof Error);
		process.stderr.write(`idp: ${ev}: ${err ? err.message : ''}\n`);
	});
}
provider.on('backchannel.success', (ctx, cl, accountId, sid) => {
	process.stderr.write(`idp: back-channel logout delivered to ${cl.clientId} for ${accountId} sid=${sid}\n`);
});
provider.on('grant.success', (ctx) => {
	process.stderr.write(`idp: grant issued (${ctx.oidc.params?.grant_type ?? ''})\n`);
});

// oidc-provider leaves `interval` out of the device authorization response, so clients use
// RFC 8628's 5 s default. The test IdP says 1 s (--device-interval) so that each test login
// does not wait 5 s; the broker honours whatever the IdP says.
provider.use(async (ctx, next) => {
	await next();
	if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body && ctx.body.device_code &&
	    Number.isInteger(opts.deviceInterval) && opts.deviceInterval > 0)
		ctx.body = { ...ctx.body, interval: opts.deviceInterval };
});

// Sessions by account, for --test-endpoints.
const sessionsByAccount = new Map();
provider.on('session.saved', (session) => {
	if (!session.accountId)
		return;
	if (!sessionsByAccount.has(session.accountId))
		sessionsByAccount.set(session.accountId, new Set());
	sessionsByAccount.get(session.accountId).add(session.jti);
});

if (opts.testEndpoints) {
	provider.use(async (ctx, next) => {
		if (ctx.path !== '/test/end-session')
			return next();
		const login = ctx.query.login;
		if (ctx.method !== 'POST' || typeof login !== 'string' || login.length === 0) {
			ctx.status = 400;
			ctx.body = { error: 'POST /test/end-session?login=NAME' };
			return undefined;
		}
		let ended = 0;
		let delivered = 0;
		for (const jti of sessionsByAccount.get(login) ?? []) {
			const session = await provider.Session.find(jti);
			if (!session)
				continue;
			// As end_session with logout=yes: every client of the session is told.
			for (const clientId of Object.keys(session.authorizations || {})) {
				const cl = await provider.Client.find(clientId);
				if (!cl?.backchannelLogoutUri)
					continue;
				const sid = session.sidFor(clientId);
				try {
					await cl.backchannelLogout(session.accountId, sid);
					delivered++;
					provider.emit('backchannel.success', ctx, cl, session.accountId, sid);
				} catch (err) {
					provider.emit('backchannel.error', ctx, err, cl, session.accountId, sid);
				}
			}
			await session.destroy();
			ended++;
		}
		sessionsByAccount.delete(login);
		process.stderr.write(`idp: test end-session for ${login}: ${ended} sessions, ` +
			`${delivered} back-channel logouts\n`);
		ctx.body = { ended, delivered };
		return undefined;
	});
}

const server = provider.listen(opts.port, opts.host);
server.on('error', (err) => {
	process.stderr.write(`idp: cannot listen on ${opts.host}:${opts.port}: ${err.message}\n`);
	process.exit(1);
});
server.on('listening', () => {
	process.stdout.write(`READY ${issuer}\n`);
	process.stderr.write(`idp: issuer ${issuer}, client ${opts.clientId}` +
		`${opts.bclUri ? `, back-channel logout to ${opts.bclUri}` : ''}\n`);
});

function shutdown(sig) {
	process.stderr.write(`idp: ${sig}, shutting down\n`);
	server.close(() => process.exit(0));
	server.closeAllConnections?.();
	setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
