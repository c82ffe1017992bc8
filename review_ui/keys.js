// The review app's keys work wherever the focus is, except where typing is the point (the note,
// the span editor, number and sign-in fields). Streamlit ignores keys typed into a select box, so
// after filtering, S typed into the filter and Escape cleared it (giving the batch back): a key
// that is one of the page's shortcuts now leaves a closed select box and reaches the page, and
// Escape only leaves it. Streamlit's own single keys R (rerun) and C (clear cache) are kept from
// reviewers. Installed once per browser tab.
(() => {
  if (window.labelagentKeys) return;
  window.labelagentKeys = true;
  const TYPING = 'textarea, input:not([role="combobox"]), [contenteditable="true"]';

  function isShortcut(key) {
    const registered = window.hotkeys ? window.hotkeys.getAllKeyCodes() : [];
    return registered.some((entry) => entry.shortcut === key);
  }

  function replay(event) {
    const copy = new KeyboardEvent("keydown", {
      key: event.key, code: event.code, bubbles: true, cancelable: true,
    });
    for (const name of ["keyCode", "which"]) {
      Object.defineProperty(copy, name, { get: () => event.keyCode });
    }
    document.body.dispatchEvent(copy);
  }

  window.addEventListener("keydown", (event) => {
    const target = event.target;
    if (!event.isTrusted || event.ctrlKey || event.metaKey || event.altKey) return;
    if (!(target instanceof Element) || target.closest(TYPING)) return;
    const key = event.key.toLowerCase();
    const select = target.closest('[role="combobox"]');
    if (select) {
      if (select.getAttribute("aria-expanded") === "true") return;
      if (key !== "escape" && !isShortcut(key)) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      select.blur();
      if (key !== "escape") replay(event);
    } else if ((key === "r" || key === "c") && !isShortcut(key)) {
      event.stopImmediatePropagation();
    } else if (key === "enter" && target.tagName === "BUTTON") {
      event.preventDefault();  // Enter is the Accept key, not a click on the focused button
    }
  }, true);
})();
