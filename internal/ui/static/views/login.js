import { login, get } from "../api.js";
import { h } from "../dom.js";
import { navigate } from "../app.js";

export async function loginView(main, _m, params) {
  const err = h("p", { class: "error", id: "login-error", role: "alert" });
  const user = h("input", { name: "user", id: "user", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { name: "password", id: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      err.textContent = "";
      try {
        await login(user.value, password.value);
        const next = params.get("next") || "/runs";
        // Only paths of this site: a crafted link must not send the
        // user elsewhere after logging in.
        const safe = next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/login");
        navigate(safe ? next : "/runs", true);
      } catch (e) {
        err.textContent = e.message;
        password.value = "";
      }
    },
  },
    h("label", {}, "User", user),
    h("label", {}, "Password", password),
    h("button", { class: "primary", type: "submit" }, "Log in"),
    err,
  );
  main.append(h("div", { class: "card login" }, h("h1", {}, "Log in to gantry"), form));
  // Single sign-on, when the server has it (the issuer brings the user
  // back logged in).
  const methods = await get("/auth/methods").catch(() => ({}));
  if (methods.oidc) form.append(h("a", { href: "/auth/oidc/login", id: "sso" }, "Log in with single sign-on"));
}
