// Sign in with Entra ID: OAuth 2.0's authorization code flow with PKCE (RFC 7636), as a
// single-page app registered in Entra ID does. No secret: the code the tenant sends back is
// good only with this tab's one-time verifier, and the state guards against a forged return.
// Offered when the API is configured for it (GET /packetwatch/signin); the token it gets is
// used as a typed one would be (and kept for this tab only).
"use strict";

const base64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const randomText = () => base64url(crypto.getRandomValues(new Uint8Array(32)));
const REDIRECT = location.origin + location.pathname;

async function beginSignIn(signin) {
  const verifier = randomText();
  const signInState = randomText();
  sessionStorage.setItem("packetwatch.signin", JSON.stringify({ verifier, state: signInState }));
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const query = new URLSearchParams({
    client_id: signin.clientId, response_type: "code", redirect_uri: REDIRECT, response_mode: "query",
    scope: signin.scope, state: signInState, code_challenge: challenge, code_challenge_method: "S256",
  });
  location.assign(`${signin.authorizationEndpoint}?${query}`);
}

async function finishSignIn(signin, back) {
  const pending = JSON.parse(sessionStorage.getItem("packetwatch.signin") || "{}");
  sessionStorage.removeItem("packetwatch.signin");
  history.replaceState(null, "", REDIRECT);  // the code is spent: not left in the address bar
  if (back.has("error")) throw new Error(`${back.get("error")}: ${back.get("error_description") || ""}`);
  if (!pending.state || back.get("state") !== pending.state) throw new Error("the sign-in's state does not match");
  const response = await fetch(signin.tokenEndpoint, {
    method: "POST",
    body: new URLSearchParams({ client_id: signin.clientId, grant_type: "authorization_code", code: back.get("code"),
                                redirect_uri: REDIRECT, code_verifier: pending.verifier, scope: signin.scope }),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`${answer.error}: ${answer.error_description || ""}`);
  $("token").value = answer.access_token;
  if ($("token").control) $("token").control.value = answer.access_token;
  await connect();
}

(async () => {
  const answer = await fetch("/packetwatch/signin");
  if (!answer.ok) return;  // not configured: tokens are typed
  const signin = await answer.json();
  $("signin").hidden = false;
  $("signin").addEventListener("click", () => beginSignIn(signin).catch((error) => say(error.message, true)));
  const back = new URLSearchParams(location.search);
  if (back.has("code") || back.has("error")) await finishSignIn(signin, back);
})().catch((error) => say(`Entra ID sign-in: ${error.message}`, true));
