// A real OpenID Connect provider for the tests and the local run: panva's oidc-provider
// (OpenID Certified) from node_modules, with its development login form.
//
//   node tools/oidc_provider.mjs CONFIG.json
//
// CONFIG: {"issuer": "http://127.0.0.1:9400", "port": 9400,
//          "clients": [{"client_id", "client_secret", "redirect_uris": [...]}],
//          "users": {"admin": {"groups": ["admins"], "name": "...", "email": "..."}},
//          "groups_claim": "mcm-idp-groups", "access_token_ttl": 3600}
// Any login name works (the dev form checks no password); names listed in "users" get
// their groups, others get none. Prints "ready <issuer>" once it listens.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const groupsClaim = config.groups_claim || 'mcm-idp-groups';
const users = config.users || {};

const provider = new Provider(config.issuer, {
  clients: config.clients.map((client) => ({
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...client,
  })),
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', groupsClaim],
  },
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => {
      const user = users[sub] || {};
      return {
        sub,
        email: user.email || `${sub}@example.test`,
        email_verified: true,
        name: user.name || `User ${sub}`,
        [groupsClaim]: user.groups || [],
      };
    },
  }),
  ttl: {
    AccessToken: config.access_token_ttl || 3600,
    IdToken: config.access_token_ttl || 3600,
    RefreshToken: 86400,
    Session: 86400,
    Grant: 86400,
    Interaction: 600,
  },
  features: { devInteractions: { enabled: true }, revocation: { enabled: true } },
  cookies: { keys: [config.cookie_key || 'local-test-cookie-key'] },
  rotateRefreshToken: true,
});
// The dev form and the session cookies live on http://127.0.0.1; allow that.
provider.proxy = true;

provider.listen(config.port, '127.0.0.1', () => {
  console.log(`ready ${config.issuer}`);
});
