// Web chat client: WebSocket first, HTTP POST as fallback. Every message carries a client id,
// so a retry after a dropped connection is recognised by the server and never answered twice.
(() => {
  "use strict";
  const log = document.getElementById("log");
  const choices = document.getElementById("choices");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const sendButton = document.getElementById("send");
  const status = document.getElementById("status");
  const pending = new Map(); // id -> text, waiting for an answer
  const posting = new Set(); // ids whose answer is coming back on an HTTP POST in flight
  let socket = null;
  let retryDelay = 1000;

  function newId() {
    return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
  }

  function append(direction, text, extraClass) {
    const item = document.createElement("li");
    item.className = "msg msg--" + direction + (extraClass ? " msg--" + extraClass : "");
    const bubble = document.createElement("div");
    bubble.className = "msg__bubble";
    bubble.textContent = text; // never innerHTML: replies may quote user text
    item.appendChild(bubble);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  function showChoices(list) {
    choices.replaceChildren();
    for (const label of list || []) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.addEventListener("click", () => send(label));
      choices.appendChild(button);
    }
  }

  function showReplies(replies, extraClass) {
    let last = [];
    for (const reply of replies) {
      append("in", reply.text, extraClass);
      last = reply.choices;
    }
    showChoices(last);
  }

  function onFrame(frame) {
    if (frame.type === "replies") {
      // A message re-sent after a reconnect is answered again by the server with the first
      // answer (same id): show it only once.
      if (frame.in_reply_to && !pending.has(frame.in_reply_to)) return;
      pending.delete(frame.in_reply_to);
      showReplies(frame.replies);
    } else if (frame.type === "push") {
      showReplies(frame.replies, "person");
    } else if (frame.type === "error") {
      append("in", "消息发送失败：" + frame.error, "error");
    }
  }

  async function postMessage(id, text) {
    posting.add(id);
    try {
      const response = await fetch("/api/chat/messages", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ id, text }),
        credentials: "same-origin",
      });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || response.statusText);
      onFrame(body);
    } finally {
      posting.delete(id);
    }
  }

  function send(text) {
    text = text.trim();
    if (!text) return;
    const id = newId();
    pending.set(id, text);
    append("out", text);
    showChoices([]);
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "message", id, text }));
    } else {
      postMessage(id, text).catch((err) => {
        status.textContent = "网络不稳定，正在重试…";
        setTimeout(() => postMessage(id, text).then(() => (status.textContent = "")).catch(
          () => append("in", "消息未能送达，请检查网络后重试。（" + err.message + "）", "error")), 2000);
      });
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/api/chat/ws");
    socket.addEventListener("open", () => {
      status.textContent = "";
      retryDelay = 1000;
      // Re-send anything that was in flight when the connection dropped; same ids, so no duplicates.
      // (Not those whose POST is still in flight: their answer, with its buttons, comes from it.)
      for (const [id, text] of pending) {
        if (!posting.has(id)) socket.send(JSON.stringify({ type: "message", id, text }));
      }
    });
    socket.addEventListener("message", (event) => {
      try { onFrame(JSON.parse(event.data)); } catch (e) { /* ignore malformed frames */ }
    });
    socket.addEventListener("close", () => {
      status.textContent = "连接已断开，正在重新连接…";
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    });
  }

  async function loadHistory() {
    try {
      const response = await fetch("/api/chat/history", { credentials: "same-origin" });
      const body = await response.json();
      for (const m of body.messages) append(m.direction === "in" ? "out" : "in", m.text,
        m.author && m.author.startsWith("commissioner") ? "person" : "");
      if (!body.messages.length) send("你好");
    } catch (e) {
      status.textContent = "历史记录加载失败";
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(input.value);
    input.value = "";
    input.focus();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  loadHistory().then(connect);
})();
