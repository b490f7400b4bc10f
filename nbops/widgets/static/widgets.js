// nbops widgets (RunBrowser, PromotionPanel): draw the HTML the kernel built, send the user's
// clicks back. The kernel side is nbops/widgets/view.py; the HTML comes from
// nbops/widgets/render.py. Elements with data-action are controls; data-tip is a tooltip;
// data-keep text boxes keep what is typed across redraws (unless the kernel marks one
// data-reset). No framework, no build step.

const WAIT_NOTE_MS = 800; // "waiting for the kernel" after this long without an answer
let saveStateChecked = null; // one settings request per page

function payload(element, extra) {
  const data = { ...element.dataset, ...extra };
  delete data.keep;
  delete data.tip;
  delete data.reset;
  return data;
}

function tooltip(root) {
  const tip = document.createElement("div");
  tip.className = "nbops-tip";
  tip.style.display = "none";
  root.appendChild(tip);
  const place = (event) => {
    // relative to the widget (position: absolute): a notebook's containers may be transformed,
    // which moves a position: fixed element away from the pointer
    const box = root.getBoundingClientRect();
    const x = Math.min(event.clientX - box.left + 14, root.clientWidth - tip.offsetWidth - 4);
    let y = event.clientY - box.top + 14;
    if (y + tip.offsetHeight > root.clientHeight) y -= tip.offsetHeight + 24; // above, near the end
    tip.style.left = `${Math.max(4, x)}px`;
    tip.style.top = `${Math.max(0, y)}px`;
  };
  root.addEventListener("mouseover", (event) => {
    const target = event.target.closest ? event.target.closest("[data-tip]") : null;
    if (!target || !root.contains(target)) return;
    tip.textContent = target.dataset.tip;
    tip.style.display = "block";
    place(event);
  });
  root.addEventListener("mousemove", (event) => {
    if (tip.style.display !== "none") place(event);
  });
  root.addEventListener("mouseout", (event) => {
    const target = event.target.closest ? event.target.closest("[data-tip]") : null;
    if (target) tip.style.display = "none";
  });
  return tip;
}

async function saveStateIsOff() {
  // JupyterLab and Notebook 7 keep their settings behind /lab/api/settings; elsewhere (VS Code,
  // Colab) there is no such page config and nothing is said.
  const config = document.getElementById("jupyter-config-data");
  if (!config) return false;
  try {
    const base = JSON.parse(config.textContent).baseUrl || "/";
    const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1];
    const headers = xsrf ? { "X-XSRFToken": decodeURIComponent(xsrf) } : {};
    const url = `${base}lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin`;
    const reply = await fetch(url, { credentials: "same-origin", headers });
    if (!reply.ok) return false;
    // the user's setting, else the schema's default (with the server's overrides.d applied)
    const settings = await reply.json();
    const user = (settings.settings || {}).saveState;
    const schema = ((settings.schema || {}).properties || {}).saveState || {};
    return (user !== undefined ? user : schema.default) === false;
  } catch (error) {
    return false;
  }
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "nbops-widget";
  const warning = document.createElement("div");
  const body = document.createElement("div");
  const waiting = document.createElement("div");
  waiting.className = "nbops-waiting-note";
  waiting.textContent = "waiting for the kernel (it may be running another cell)…";
  root.append(warning, body, waiting);
  el.appendChild(root);
  const tip = tooltip(root);
  let counter = 0;
  let waitTimer = null;
  let checking = false;

  const connected = () =>
    el.isConnected && !el.closest(".jupyter-widgets-disconnected");

  const settle = () => {
    clearTimeout(waitTimer);
    root.classList.remove("nbops-waiting");
  };

  const send = (data) => {
    if (!connected()) return; // a snapshot: no kernel to answer
    counter += 1;
    model.send({ ...data, id: counter });
    clearTimeout(waitTimer);
    waitTimer = setTimeout(() => root.classList.add("nbops-waiting"), WAIT_NOTE_MS);
  };

  const draw = () => {
    const view = model.get("view") || {};
    const kept = {};
    let focused = null;
    for (const input of body.querySelectorAll("input[data-keep]")) {
      kept[input.dataset.action] = input.value;
      if (document.activeElement === input) {
        focused = [input.dataset.action, input.selectionStart, input.selectionEnd];
      }
    }
    body.innerHTML = view.html || "";
    for (const input of body.querySelectorAll("input[data-keep]")) {
      const action = input.dataset.action;
      if (action in kept && !("reset" in input.dataset)) input.value = kept[action];
      if (focused && focused[0] === action) {
        input.focus();
        input.setSelectionRange(focused[1], focused[2]);
      }
    }
    for (const title of body.querySelectorAll("[data-tip] > title")) title.remove();
    tip.style.display = "none";
    settle();
    checking = false;
  };

  body.addEventListener("click", (event) => {
    const target = event.target.closest("[data-action]");
    if (!target || !body.contains(target)) return;
    if (target.tagName === "INPUT" || target.tagName === "SELECT") return;
    if (target.getAttribute("aria-disabled") === "true") return;
    event.preventDefault();
    send(payload(target));
  });
  const typed = {}; // the last text sent per text box: Enter, then the blur, send it once
  body.addEventListener("change", (event) => {
    const target = event.target;
    if (!target.dataset || !target.dataset.action) return;
    const value = target.type === "checkbox" ? target.checked : target.value;
    if ("keep" in target.dataset) {
      if (typed[target.dataset.action] === value) return;
      typed[target.dataset.action] = value;
    }
    send(payload(target, { value }));
  });
  for (const kind of ["keydown", "keypress", "keyup"]) {
    body.addEventListener(kind, (event) => {
      const target = event.target;
      if (target.tagName !== "INPUT" || !("keep" in target.dataset)) return;
      event.stopPropagation(); // typing "a" or "dd" must not run notebook shortcuts
      if (kind === "keydown" && event.key === "Enter") {
        typed[target.dataset.action] = target.value;
        send(payload(target, { value: target.value }));
      }
    });
  }

  const onCustom = (message) => {
    if (message && "done" in message) {
      settle();
      checking = false;
    }
  };
  model.on("change:view", draw);
  model.on("msg:custom", onCustom);
  draw();

  const poll = (model.get("view") || {}).poll || 0;
  const timer = poll
    ? setInterval(() => {
        if (checking || !connected() || document.visibilityState !== "visible") return;
        checking = true;
        counter += 1;
        model.send({ action: "check", id: counter });
      }, poll * 1000)
    : null;

  if (saveStateChecked === null) saveStateChecked = saveStateIsOff();
  saveStateChecked.then((off) => {
    if (!off) return;
    warning.className = "nbops-message nbops-warn nbops-savestate";
    warning.textContent =
      "JupyterLab is set not to save widget state, so after the notebook is reopened this " +
      "shows \"Error displaying widget\" instead of its last state. Turn on Settings › " +
      "Save Widget State Automatically (then save the notebook).";
  });

  return () => {
    if (timer) clearInterval(timer);
    clearTimeout(waitTimer);
    model.off("change:view", draw);
    model.off("msg:custom", onCustom);
  };
}

export default { render };
