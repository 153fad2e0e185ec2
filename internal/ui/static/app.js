// The UI's entry: a router over the History API. Each view renders into
// <main> and returns a function that stops what it started (polling, log
// streams) when the page changes.
import { loadSession, logout, session, can } from "./api.js";
import { toast } from "./dom.js";
import { loginView } from "./views/login.js";
import { runsView } from "./views/runs.js";
import { runView } from "./views/run.js";
import { approvalsView } from "./views/approvals.js";
import { environmentsView, environmentView } from "./views/environments.js";
import { auditView } from "./views/audit.js";
import { evidenceView } from "./views/evidence.js";

const routes = [
  [/^\/login$/, loginView],
  [/^\/(runs)?$/, runsView],
  [/^\/runs\/(\d+)$/, runView],
  [/^\/approvals$/, approvalsView],
  [/^\/environments$/, environmentsView],
  [/^\/environments\/([A-Za-z0-9][A-Za-z0-9._-]*)$/, environmentView],
  [/^\/audit$/, auditView],
  [/^\/evidence\/(sha256:[0-9a-f]{64})$/, evidenceView],
];

let stop = null;

export function navigate(path, replace) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

async function render() {
  if (stop) {
    stop();
    stop = null;
  }
  const main = document.getElementById("main");
  main.replaceChildren();
  const path = location.pathname;
  if (path !== "/login" && !session.user) {
    let ok = false;
    try {
      ok = await loadSession();
    } catch (e) {
      main.textContent = "The server did not answer: " + e.message;
      return;
    }
    if (!ok) {
      navigate("/login?next=" + encodeURIComponent(location.pathname + location.search), true);
      return;
    }
  }
  chrome();
  for (const [re, view] of routes) {
    const m = path.match(re);
    if (m) {
      try {
        stop = (await view(main, m.slice(1), new URLSearchParams(location.search))) || null;
      } catch (e) {
        main.replaceChildren();
        main.append(Object.assign(document.createElement("p"), { className: "error", textContent: e.message }));
      }
      return;
    }
  }
  main.textContent = "No page here.";
}

// chrome shows the navigation and who is logged in.
function chrome() {
  const logged = !!session.user;
  document.getElementById("nav").hidden = !logged;
  document.getElementById("who").hidden = !logged;
  document.getElementById("who-name").textContent = session.user;
  document.getElementById("who-role").textContent = session.role;
  for (const a of document.querySelectorAll("nav a")) {
    a.hidden = a.dataset.role ? !can(a.dataset.role) : false;
    a.classList.toggle("active", location.pathname.startsWith(a.getAttribute("href")));
  }
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[data-link]");
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", render);
window.addEventListener("gantry:unauthenticated", () => {
  session.user = "";
  if (location.pathname !== "/login") navigate("/login?next=" + encodeURIComponent(location.pathname), true);
});
document.getElementById("logout").addEventListener("click", async () => {
  try {
    await logout();
  } catch (e) {
    toast(e.message, true);
  }
  navigate("/login", true);
});

render();
