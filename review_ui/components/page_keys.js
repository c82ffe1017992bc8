// The review pages' own keys: ? shows the keys, Ctrl+Z undoes, and on a spans item a number
// pressed anywhere picks the span picker's label (and gives the picker the focus).
(() => {
  if (window.labelagentKeys) return;
  window.labelagentKeys = true;
  const typing = (el) =>
    el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  const press = (key) => {
    const button = document.querySelector(`.st-key-${key} button`);
    if (button) button.click();
    return Boolean(button);
  };
  document.addEventListener("keydown", (event) => {
    if (typing(event.target)) return;
    const picker = document.querySelector('[class*="st-key-spans-picker"] iframe');
    let done = false;
    if (event.key === "?") done = press("show-keys");
    else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      done = press("undo");
    }
    else if (picker && /^[1-9]$/.test(event.key) && !event.ctrlKey && !event.metaKey) {
      const frame = picker.contentWindow;
      frame.focus();
      frame.dispatchEvent(new frame.CustomEvent("labelagent:key", {detail: event.key}));
      done = true;
    }
    if (done) event.preventDefault();
  }, true);
})();
