// A client written against the TypeScript types that openapi-typescript
// generates from openapi.json, compiled with `tsc --strict` and run against
// the real binary by ci/ts-client.sh. If the document and the service drift
// apart, this fails to compile (types) or exits non-zero (answers).
//
// Usage: node out/client.js BASE_URL
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type SignUpRequest = components["schemas"]["SignUpRequest"];

// The generated sign-up body must require `email` and `password`: each line
// below has to be a type error, or `tsc` reports an unused directive.
// @ts-expect-error a name alone is not a sign-up body
const nameOnly: SignUpRequest = { name: "x" };
// @ts-expect-error email is required
const noEmail: SignUpRequest = { password: "correct horse battery staple", name: "Ann Lee" };
// @ts-expect-error password is required
const noPassword: SignUpRequest = { email: "ann@example.com", name: "Ann Lee" };
void [nameOnly, noEmail, noPassword];

function check(condition: boolean, what: string): asserts condition {
  if (!condition) {
    throw new Error(`mismatch: ${what}`);
  }
}

const base = process.argv[2];
if (base === undefined) {
  console.error("usage: node client.js BASE_URL");
  process.exit(2);
}

const client = createClient<paths>({ baseUrl: base });
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

const email = `ts-client-${Date.now()}@example.com`;
const password = "a typed client passphrase 31";

// Sign up with first and last name: `name` is derived from them.
{
  // @ts-expect-error the route's body type is the one checked above
  void client.POST("/signup/", { body: { name: "x" } });
  const { data, error, response } = await client.POST("/signup/", {
    body: { email, password, first_name: "Ada", last_name: "Lovelace" },
  });
  check(response.status === 201 && data !== undefined, `sign up: ${response.status} ${JSON.stringify(error)}`);
  check(data.user.email === email, "sign up: user.email");
  check(data.user.name === "Ada Lovelace", `sign up: derived name ${data.user.name}`);
}

// The same address again: the typed error body.
{
  const { error, response } = await client.POST("/signup/", {
    body: { email, password, name: "Ada Lovelace" },
  });
  check(response.status === 409 && error?.code === "email_exists", `second sign up: ${response.status}`);
}

// Log in.
const login = await (async () => {
  const { data, error, response } = await client.POST("/login/", { body: { email, password } });
  check(response.status === 200 && data !== undefined, `log in: ${response.status} ${JSON.stringify(error)}`);
  check(data.token_type === "Bearer", "log in: token_type");
  check(data.expires_in > 0 && data.refresh_expires_in > 0, "log in: lifetimes");
  check(data.access_token.split(".").length === 3, "log in: access_token is a JWT");
  check(data.user.email === email, "log in: user.email");
  check(response.headers.get("cache-control") === "no-store", "log in: Cache-Control");
  check(data.device_token.length > 0, "log in: device_token");
  return data;
})();

// Log in again with the device token, as a returning device does.
{
  const { data, error, response } = await client.POST("/login/", {
    body: { email, password, device_token: login.device_token },
  });
  check(response.status === 200 && data !== undefined, `device login: ${response.status} ${JSON.stringify(error)}`);
}

// Read the profile.
{
  const { data, response } = await client.GET("/profile/", { headers: bearer(login.access_token) });
  check(response.status === 200 && data !== undefined, `get profile: ${response.status}`);
  check(data.id === login.user.id && data.first_name === "Ada", "get profile: user");
}

// Update it (JSON body of PATCH /profile/).
{
  const { data, error, response } = await client.PATCH("/profile/", {
    headers: bearer(login.access_token),
    body: { name: "Ada King" },
  });
  check(response.status === 200 && data !== undefined, `update profile: ${response.status} ${JSON.stringify(error)}`);
  check(data.name === "Ada King" && data.last_name === "Lovelace", "update profile: fields");
}

// A wrong current password is a 400 naming the field, never a 401 (which
// clients answer by logging the user out).
{
  const { error, response } = await client.PATCH("/profile/", {
    headers: bearer(login.access_token),
    body: { email: `new-${email}`, current_password: "not the password 1" },
  });
  check(response.status === 400 && error?.code === "validation_error", `wrong password: ${response.status}`);
  check(error.fields?.["current_password"] !== undefined, "wrong password: fields.current_password");
}

// Refresh, and use the new access token.
{
  const { data, error, response } = await client.POST("/refresh/", {
    body: { refresh_token: login.refresh_token },
  });
  check(response.status === 200 && data !== undefined, `refresh: ${response.status} ${JSON.stringify(error)}`);
  check(data.token_type === "Bearer" && data.expires_in > 0, "refresh: answer");
  const profile = await client.GET("/profile/", { headers: bearer(data.access_token) });
  check(profile.data?.name === "Ada King", "profile with the refreshed token");
}

// An unknown refresh token: the typed OAuth-style error.
{
  const { error, response } = await client.POST("/refresh/", { body: { refresh_token: "not-a-token" } });
  check(response.status === 400 && error?.code === "invalid_refresh_token", `bad refresh: ${response.status}`);
}

console.log("ts-client: ok");
