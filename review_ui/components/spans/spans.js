// Spans by selecting text: the item's text with its spans as coloured marks. Select text and press
// a label's number (or click the label), or pick a label first and then select; click a mark to
// relabel it (a number) or remove it (Delete). Talks to Streamlit with the components v1
// postMessage protocol; no library, no build step.
//
// The text is untrusted: it is only ever set with textContent / text nodes, never as HTML.
// Offsets sent to Python are code points (Python's string indices), not JavaScript's UTF-16 units.
"use strict";

const palette = document.getElementById("palette");
const textBox = document.getElementById("text");
const statusLine = document.getElementById("status");
const NAVIGATION = new Set([
  "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown",
  "Shift", "Control", "Alt", "Meta", "Tab",
]);
const view = {
  text: null,
  chars: [], // the text as code points
  starts: [0], // UTF-16 offset where each code point starts, and the text's length last
  labels: [],
  colors: [],
  forward: {}, // key name -> Streamlit widget key of the app's button it presses
  spans: [], // {start, end, label}, code points, sorted
  active: null, // the label index a selection gets at once
  chosen: null, // the index of the mark clicked on
  sent: 0, // how many changes this frame has sent
  received: null, // the last arguments from Python, as JSON
};

function post(type, data) {
  window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, "*");
}

function resize() {
  post("streamlit:setFrameHeight", { height: document.documentElement.scrollHeight + 2 });
}

function send() {
  view.sent += 1;
  const spans = view.spans.map(({ start, end, label }) => ({ start, end, label }));
  post("streamlit:setComponentValue", { value: { spans, n: view.sent }, dataType: "json" });
}

function codePointAt(utf16) {
  const starts = view.starts;
  let low = 0;
  let high = starts.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (starts[middle] < utf16) low = middle + 1;
    else high = middle;
  }
  return low;
}

function piece(start, end) {
  return view.chars.slice(start, end).join("");
}

function colorOf(label) {
  const index = view.labels.indexOf(label);
  return index < 0 ? "#eeeeee" : view.colors[index % view.colors.length];
}

function offsetIn(node, offset) {
  const range = document.createRange();
  range.setStart(textBox, 0);
  range.setEnd(node, offset);
  return range.toString().length;
}

// The selected text as a code-point range, without white space at either end; null if none.
function selection() {
  const chosen = document.getSelection();
  if (!chosen || chosen.rangeCount === 0 || chosen.isCollapsed) return null;
  const range = chosen.getRangeAt(0);
  if (!textBox.contains(range.startContainer) || !textBox.contains(range.endContainer)) return null;
  let start = codePointAt(offsetIn(range.startContainer, range.startOffset));
  let end = codePointAt(offsetIn(range.endContainer, range.endOffset));
  while (start < end && /\s/u.test(view.chars[start])) start += 1;
  while (end > start && /\s/u.test(view.chars[end - 1])) end -= 1;
  return start < end ? { start, end } : null;
}

function say(message, removable) {
  statusLine.replaceChildren(document.createTextNode(message));
  if (removable) {
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Remove (Delete)";
    remove.addEventListener("mousedown", (event) => event.preventDefault());
    remove.addEventListener("click", () => removeChosen());
    statusLine.append(remove);
  }
}

function drawPalette() {
  palette.replaceChildren();
  view.labels.forEach((label, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = index < 9 ? `${index + 1} ${label}` : label;
    button.style.background = colorOf(label);
    button.setAttribute("aria-pressed", String(index === view.active));
    button.addEventListener("mousedown", (event) => event.preventDefault()); // keep the selection
    button.addEventListener("click", () => useLabel(index));
    palette.append(button);
  });
}

function drawText() {
  textBox.replaceChildren();
  let at = 0;
  view.spans.forEach((span, index) => {
    if (span.start < at) return;
    textBox.append(document.createTextNode(piece(at, span.start)));
    const mark = document.createElement("mark");
    mark.textContent = piece(span.start, span.end);
    mark.dataset.label = span.label;
    mark.dataset.index = String(index);
    mark.style.background = colorOf(span.label);
    if (index === view.chosen) mark.classList.add("chosen");
    textBox.append(mark);
    at = span.end;
  });
  textBox.append(document.createTextNode(piece(at, view.chars.length)));
}

function drawStatus() {
  if (view.chosen !== null) {
    const span = view.spans[view.chosen];
    say(`“${piece(span.start, span.end)}” is ${span.label}: a number relabels it.`, true);
  } else if (view.active !== null) {
    say(`Selections become ${view.labels[view.active]} (Esc stops).`, false);
  } else {
    say("Select text, then press a label's number (or click it). Click a mark to change it.");
  }
}

function draw() {
  drawPalette();
  drawText();
  drawStatus();
  resize();
}

function mark(label, range) {
  view.spans = view.spans.filter((s) => s.end <= range.start || s.start >= range.end);
  view.spans.push({ start: range.start, end: range.end, label });
  view.spans.sort((a, b) => a.start - b.start || a.end - b.end);
  view.chosen = null;
  document.getSelection().removeAllRanges();
  draw();
  send();
}

function removeChosen() {
  view.spans.splice(view.chosen, 1);
  view.chosen = null;
  draw();
  send();
}

function useLabel(index) {
  const label = view.labels[index];
  if (label === undefined) return;
  const range = selection();
  if (range) {
    mark(label, range);
  } else if (view.chosen !== null) {
    view.spans[view.chosen].label = label;
    view.chosen = null;
    draw();
    send();
  } else {
    view.active = view.active === index ? null : index;
    draw();
  }
}

function pressInApp(name) {
  const key = view.forward[name];
  if (!key) return false;
  try {
    const button = window.parent.document.querySelector(`.st-key-${key} button`);
    if (button) button.click();
  } catch (error) {
    return false; // the app is on another origin: the key stays in this frame
  }
  return true;
}

function onKey(event) {
  const key = event.key;
  const plain = !event.ctrlKey && !event.metaKey && !event.altKey;
  if (plain && /^[1-9]$/.test(key)) {
    event.preventDefault();
    useLabel(Number(key) - 1);
  } else if (key === "Escape") {
    view.active = null;
    view.chosen = null;
    document.getSelection().removeAllRanges();
    draw();
  } else if ((key === "Delete" || key === "Backspace") && view.chosen !== null) {
    event.preventDefault();
    removeChosen();
  } else if (!NAVIGATION.has(key)) {
    const modifier = event.ctrlKey || event.metaKey ? "ctrl+" : "";
    const name = modifier + (key.length === 1 ? key.toLowerCase() : key);
    if (pressInApp(name)) event.preventDefault();
  }
}

function onSelectionEnd() {
  const range = selection();
  if (range && view.active !== null) mark(view.labels[view.active], range);
}

function onClick(event) {
  const target = event.target;
  if (!(target instanceof HTMLElement) || target.tagName !== "MARK") return;
  if (!document.getSelection().isCollapsed) return;
  const index = Number(target.dataset.index);
  view.chosen = view.chosen === index ? null : index;
  draw();
}

function onRender(args) {
  // Streamlit sends the same arguments again now and then (after a resize, say); drawing again
  // then would drop the reviewer's selection.
  const received = JSON.stringify(args);
  if (received === view.received) return;
  view.received = received;
  view.labels = args.labels;
  view.colors = args.colors;
  view.forward = args.forward || {};
  if (args.text !== view.text) {
    view.text = args.text;
    view.chars = Array.from(args.text);
    view.starts = [];
    let at = 0;
    for (const char of view.chars) {
      view.starts.push(at);
      at += char.length;
    }
    view.starts.push(at);
    view.chosen = null;
  }
  if (args.applied >= view.sent) {
    view.sent = args.applied;
    view.spans = args.spans.map(({ start, end, label }) => ({ start, end, label }));
    if (view.chosen !== null && view.chosen >= view.spans.length) view.chosen = null;
  }
  draw();
}

textBox.addEventListener("beforeinput", (event) => event.preventDefault()); // read-only text
textBox.addEventListener("drop", (event) => event.preventDefault());
textBox.addEventListener("mouseup", onSelectionEnd);
textBox.addEventListener("keyup", (event) => {
  if (event.key === "Shift") onSelectionEnd();
});
textBox.addEventListener("click", onClick);
document.addEventListener("keydown", onKey);
window.addEventListener("message", (event) => {
  if (event.data && event.data.type === "streamlit:render") onRender(event.data.args);
});
window.addEventListener("labelagent:key", (event) => {
  textBox.focus();
  useLabel(Number(event.detail) - 1);
});
new ResizeObserver(resize).observe(document.body);
post("streamlit:componentReady", { apiVersion: 1 });
