// The sign-in page: posts the name and password; the server sets the session cookie.

const params = new URLSearchParams(location.search);
const form = document.getElementById("sign-in");
const error = document.getElementById("error");
const button = document.getElementById("submit");

// Back to the page that sent us here, but only to a page of this site (never an open redirect).
function nextPage() {
  const next = params.get("next") || "";
  return next.startsWith("/") && !next.startsWith("//") && !next.includes("\\") ? next : "index.html";
}

const status = document.getElementById("status");
if (params.get("signed_out")) status.textContent = "You have signed out.";
else if (params.get("next")) status.textContent = "Sign in to see that page.";

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const name = document.getElementById("name").value.trim();
  const password = document.getElementById("password").value;
  if (!name || !password) { error.textContent = "Enter your user name and password."; return; }
  button.disabled = true;
  try {
    const response = await fetch("/api/auth/login", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name, password }),
    });
    if (response.ok) { location.assign(nextPage()); return; }
    const body = await response.json().catch(() => null);
    error.textContent = typeof body?.detail === "string" ? body.detail : `Signing in failed (${response.status}).`;
  } catch (failure) {
    error.textContent = `Signing in failed: ${failure.message}`;
  } finally {
    button.disabled = false;
  }
});
