// The review app's one key script, installed once per browser tab (review_ui/keys.py). The keys
// work wherever the focus is, except where typing is the point (the note, the span lines, number
// and sign-in fields):
// - BUTTONS: keys Streamlit's button shortcuts cannot take (they take letters and digits only)
//   press a button of the page, found by its widget key;
// - 1 … 9 on a spans item go to the span picker (and give it the focus);
// - Streamlit ignores keys typed into a select box, so a page key there leaves the (closed) box
//   and acts, and Escape only leaves it;
// - Streamlit's own single keys R (rerun) and C (clear cache) are kept from reviewers;
// - Enter on a focused button is the Accept key, not a click on that button.
// Keys pressed inside the span picker are its own; it forwards the page's keys (spans.js).
(() => {
  if (window.labelagentKeys) return;
  window.labelagentKeys = true;
  const BUTTONS = { "?": "show-keys", "ctrl+z": "undo" };
  const STREAMLIT_KEYS = ["r", "c"];
  const TYPING = 'textarea, input:not([role="combobox"]), [contenteditable="true"]';
  const PICKER = '[class*="st-key-spans-picker"] iframe';

  function nameOf(event) {
    return (event.ctrlKey || event.metaKey ? "ctrl+" : "") + event.key.toLowerCase();
  }

  function isStreamlitShortcut(name) {
    const registered = window.hotkeys ? window.hotkeys.getAllKeyCodes() : [];
    return registered.some((entry) => entry.shortcut === name);
  }

  // The action for a key this script handles itself, or null.
  function actionFor(name) {
    if (BUTTONS[name]) {
      const button = document.querySelector(`.st-key-${BUTTONS[name]} button`);
      return button ? () => button.click() : null;
    }
    const picker = document.querySelector(PICKER);
    if (picker && /^[1-9]$/.test(name)) {
      return () => {
        const frame = picker.contentWindow;
        frame.focus();
        frame.dispatchEvent(new frame.CustomEvent("labelagent:key", { detail: name }));
      };
    }
    return null;
  }

  // The key again, from the page's body, for Streamlit's shortcuts (they read keyCode).
  function replay(event) {
    const copy = new KeyboardEvent("keydown", {
      key: event.key, code: event.code, bubbles: true, cancelable: true,
    });
    for (const property of ["keyCode", "which"]) {
      Object.defineProperty(copy, property, { get: () => event.keyCode });
    }
    document.body.dispatchEvent(copy);
  }

  function leaveSelect(event, select, name, action) {
    if (select.getAttribute("aria-expanded") === "true") return;
    if (name !== "escape" && !action && !isStreamlitShortcut(name)) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    select.blur();
    if (action) action();
    else if (name !== "escape") replay(event);
  }

  window.addEventListener("keydown", (event) => {
    const target = event.target;
    if (!event.isTrusted || event.altKey) return;
    if (!(target instanceof Element) || target.closest(TYPING)) return;
    const name = nameOf(event);
    const action = actionFor(name);
    const select = target.closest('[role="combobox"]');
    if (select) {
      leaveSelect(event, select, name, action);
    } else if (action) {
      event.preventDefault();
      action();
    } else if (STREAMLIT_KEYS.includes(name) && !isStreamlitShortcut(name)) {
      event.stopImmediatePropagation();
    } else if (name === "enter" && target.tagName === "BUTTON") {
      event.preventDefault();
    }
  }, true);
})();
