// Web chat client: WebSocket first, HTTP POST as fallback. Every message carries a client id,
// so a retry after a dropped connection is recognised by the server and never answered twice.
// All of the page's script is here (the page allows no inline script); text from the server or
// the user is only ever set as textContent, never parsed as HTML.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const choices = $("choices");
  const form = $("composer");
  const input = $("text");
  const status = $("status");
  const banner = $("banner");
  const liveBar = $("live");
  const liveText = $("live-text");
  const liveEnd = $("live-end");
  const newer = $("newer");

  const MIN_RETRY = 500; // ms before the first reconnect attempt; doubles up to MAX_RETRY
  const MAX_RETRY = 10000;
  const MAX_RETRY_WAITING = 2000; // while a typed message waits, try at least this often
  const TAGS = { person: "服务专员", complaint: "投诉回复", status: "进度通知", rating: "服务评价" };
  const PLACEHOLDER = input.placeholder;

  const pending = new Map(); // id -> {text, item, timer}: sent or waiting to be sent, not yet answered
  const posting = new Set(); // ids whose answer is coming back on an HTTP POST in flight
  let socket = null;
  let connected = false;
  let retryDelay = MIN_RETRY;
  let retryTimer = null;
  let live = null; // {with, case, connected} while the visitor is handed to a person
  let maxChars = input.maxLength > 0 ? input.maxLength : 2000;
  let follow = true; // the reader is at the newest message: keep it in view when the log resizes
  // Notices the history just showed: the dispatcher may push the same one a moment later.
  const historyNotices = new Map();
  const loadedAt = Date.now();

  function newId() {
    return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text; // never innerHTML: replies may quote user text
    return node;
  }

  // --- the log --------------------------------------------------------------------------------

  // kind: user | bot | person | complaint | status | rating | error
  function addMessage(kind, text) {
    const item = el("li", "msg " + (kind === "user" ? "msg--out" : "msg--in") + " msg--" + kind);
    const body = el("div", "msg__body");
    if (TAGS[kind]) body.appendChild(el("span", "msg__tag", TAGS[kind]));
    body.appendChild(el("div", "msg__bubble", text));
    item.appendChild(body);
    log.appendChild(item);
    return item;
  }

  function setMeta(item, text) {
    let meta = item.querySelector(".msg__meta");
    if (!text) {
      if (meta) meta.remove();
      return;
    }
    if (!meta) {
      meta = el("span", "msg__meta");
      item.firstChild.appendChild(meta);
    }
    meta.textContent = text;
  }

  function addEvent(text, variant) {
    const item = el("li", "msg msg--event" + (variant ? " msg--event-" + variant : ""));
    item.appendChild(el("span", "msg__line", text));
    log.appendChild(item);
    return item;
  }

  function atBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }

  // Bring new messages into view: the end of the log, or, when they are taller than the log,
  // their beginning (a long answer reads from the top; the case number opens the 确认 reply).
  function reveal(first) {
    const bottom = log.scrollHeight - log.clientHeight;
    log.scrollTop = first ? Math.min(Math.max(first.offsetTop - 8, 0), bottom) : bottom;
    follow = atBottom();
    newer.hidden = true;
  }

  log.addEventListener("scroll", () => {
    follow = atBottom();
    if (follow) newer.hidden = true;
  });
  // The log shrinks when choices appear or a phone's keyboard opens: stay at the newest message.
  if (window.ResizeObserver) new ResizeObserver(() => { if (follow) log.scrollTop = log.scrollHeight; }).observe(log);
  newer.addEventListener("click", () => reveal(null));

  // --- choices --------------------------------------------------------------------------------

  function showChoices(values, labels) {
    choices.replaceChildren();
    (values || []).forEach((value, i) => {
      const label = (labels && labels[i]) || value;
      const number = (value.match(/^\d+/) || [""])[0];
      const button = el("button");
      button.type = "button";
      if (label !== value && number) { // a numbered choice: its number, and what it chooses
        button.appendChild(el("span", "choice__n", number));
        button.appendChild(document.createTextNode(label));
        button.setAttribute("aria-label", number + " " + label);
      } else if (label !== value) {
        button.textContent = label;
      } else {
        button.textContent = value;
      }
      button.addEventListener("click", () => send(value));
      choices.appendChild(button);
    });
  }

  // Adds the replies; returns the first new item. Choices: a turn's answer replaces them (none
  // when its last reply has none); a push replaces them only when it brings some.
  function showReplies(replies, turn) {
    let first = null;
    let last = null;
    for (const reply of replies) {
      const item = addMessage(reply.kind || "bot", reply.text);
      first = first || item;
      last = reply;
    }
    if (turn) showChoices(last ? last.choices : [], last ? last.labels : []);
    else if (last && last.choices && last.choices.length) showChoices(last.choices, last.labels);
    return first;
  }

  // --- live handoff ---------------------------------------------------------------------------

  function setLive(state, announce) {
    const was = live;
    live = state || null;
    if (live) {
      const who = live.with || "服务专员";
      liveBar.hidden = false;
      liveBar.classList.toggle("chat__live--waiting", !live.connected);
      liveText.textContent = (live.connected ? "已接通 " + who : "已转人工 · " + who + "将尽快回复")
        + (live.case ? " · " + live.case : "");
      input.placeholder = "直接输入，" + who + "会在这里回复…";
      if (announce && !was) addEvent(live.connected ? "已接通 " + who : "已转人工，等待 " + who + " 回复", "live");
    } else {
      liveBar.hidden = true;
      input.placeholder = PLACEHOLDER;
      if (announce && was) addEvent("人工服务已结束");
    }
  }

  function liveAck() {
    const who = live.with || "服务专员";
    return live.connected ? "✓ 已送达 " + who : "✓ 已留言，" + who + " 上线后会回复";
  }

  liveEnd.addEventListener("click", () => send("结束人工"));

  // --- frames from the server -----------------------------------------------------------------

  function onFrame(frame) {
    if (frame.type === "replies") {
      // A message re-sent after a reconnect is answered again by the server with the first
      // answer (same id): show it only once.
      if (frame.in_reply_to && !pending.has(frame.in_reply_to)) return;
      const sent = pending.get(frame.in_reply_to);
      pending.delete(frame.in_reply_to);
      const first = showReplies(frame.replies || [], true);
      setLive(frame.live, true);
      if (sent) {
        clearTimeout(sent.timer);
        // While a person is on, the bot is silent: say that the message reached them.
        setMeta(sent.item, !(frame.replies || []).length && live ? liveAck() : "");
      }
      reveal(first || (sent && sent.item));
    } else if (frame.type === "push") {
      const replies = (frame.replies || []).filter((reply) => !seenInHistory(reply.text));
      if (!replies.length) return;
      const stay = follow;
      const first = showReplies(replies, false);
      if (frame.event === "live_ended_by_commissioner") setLive(null, true);
      else if (live && !live.connected && replies.some((reply) => reply.kind === "person")) {
        setLive(Object.assign({}, live, { connected: true }), false);
      }
      if (stay) reveal(first);
      else newer.hidden = false;
    } else if (frame.type === "session") {
      // After personal data the server moved this conversation to a new session id; the socket
      // cannot set the cookie, so trade the one-time ticket for it.
      fetch("/api/chat/session", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ticket: frame.ticket }),
      }).catch(() => {});
    } else if (frame.type === "session" && typeof frame.ticket === "string") {
      // The session id was rotated (the visitor gave personal data): a WebSocket cannot set
      // cookies, so the page exchanges the one-time ticket for the new cookie.
      fetch("/api/chat/session", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ticket: frame.ticket }),
        credentials: "same-origin",
      }).catch(() => { status.textContent = "会话更新失败，请刷新页面。"; });
    } else if (frame.type === "error") {
      reveal(addMessage("error", "消息发送失败：" + frame.error));
    }
  }

  function seenInHistory(text) {
    if (Date.now() - loadedAt > 15000 || !historyNotices.get(text)) return false;
    historyNotices.set(text, historyNotices.get(text) - 1);
    return true;
  }

  // --- sending --------------------------------------------------------------------------------

  function waitingNote(entry) {
    setMeta(entry.item, connected ? "发送中…" : "等待连接，恢复后自动发送");
  }

  function send(text) {
    text = text.trim();
    if (!text) return;
    const id = newId();
    const item = addMessage("user", text);
    const entry = { text, item, timer: 0 };
    entry.timer = setTimeout(() => waitingNote(entry), 1500);
    pending.set(id, entry);
    showChoices([]);
    reveal(item);
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "message", id, text }));
    } else {
      postMessage(id);
      reconnectNow();
    }
  }

  async function postMessage(id) {
    const entry = pending.get(id);
    if (!entry || posting.has(id)) return;
    posting.add(id);
    try {
      let response;
      try {
        response = await fetch("/api/chat/messages", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ id, text: entry.text }),
          credentials: "same-origin",
        });
      } catch (err) {
        response = null; // the server is unreachable: the message waits for the reconnect
      }
      let body = null;
      if (response) {
        try { body = await response.json(); } catch (err) { body = null; }
      }
      if (response && response.ok && body) {
        onFrame(body);
      } else if (response && response.status >= 400 && response.status < 500) {
        pending.delete(id);
        clearTimeout(entry.timer);
        setMeta(entry.item, "未发送");
        reveal(addMessage("error", "消息发送失败：" + ((body && body.error) || response.statusText)));
      } else {
        waitingNote(entry);
      }
    } finally {
      posting.delete(id);
    }
    // The socket may have opened while this POST failed: send it there now.
    if (pending.has(id) && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "message", id, text: entry.text }));
    }
  }

  // --- materials: an image or PDF for the open case, sent as the raw body ---------------------

  const fileInput = $("file");
  const MAX_UPLOAD = 10 * 1024 * 1024;
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (!file) return;
    const item = addMessage("user", (file.type.startsWith("image/") ? "[图片] " : "[文件] ") + file.name);
    if (file.size > MAX_UPLOAD) {
      setMeta(item, "未发送");
      reveal(addMessage("error", "文件不能超过 10 MB"));
      return;
    }
    setMeta(item, "上传中…");
    let response = null;
    let body = null;
    try {
      response = await fetch("/api/chat/upload", {
        method: "POST", body: file, credentials: "same-origin",
        headers: { "Content-Type": "application/octet-stream", "X-File-Name": encodeURIComponent(file.name) },
      });
      body = await response.json();
    } catch (err) { body = null; }
    if (response && response.ok && body) {
      setMeta(item, "");
      onFrame(body);
    } else {
      setMeta(item, "未发送");
      reveal(addMessage("error", "上传失败：" + ((body && body.error) || "网络异常，请稍后再试")));
    }
  });

  // --- the connection -------------------------------------------------------------------------

  function setConnected(value) {
    connected = value;
    banner.hidden = value;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/api/chat/ws");
    socket = ws;
    ws.addEventListener("open", () => {
      if (socket !== ws) return;
      setConnected(true);
      retryDelay = MIN_RETRY;
      // Re-send anything typed or in flight while disconnected; same ids, so no duplicates.
      // (Not those whose POST is still in flight: their answer, with its buttons, comes from it.)
      for (const [id, entry] of pending) {
        if (!posting.has(id)) ws.send(JSON.stringify({ type: "message", id, text: entry.text }));
      }
    });
    ws.addEventListener("message", (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch (err) { return; } // ignore malformed frames
      onFrame(frame);
    });
    ws.addEventListener("close", () => {
      if (socket !== ws) return;
      socket = null;
      setConnected(false);
      scheduleReconnect();
      // Where WebSockets do not get through but HTTP does, waiting messages go by POST.
      for (const id of pending.keys()) postMessage(id);
    });
  }

  function scheduleReconnect() {
    if (retryTimer) return;
    const cap = pending.size ? MAX_RETRY_WAITING : MAX_RETRY;
    const delay = Math.min(retryDelay, cap) * (0.8 + Math.random() * 0.4);
    retryDelay = Math.min(retryDelay * 2, MAX_RETRY);
    retryTimer = setTimeout(connect, delay);
  }

  // Try at once (the user typed something, the network came back, the tab became visible).
  function reconnectNow() {
    if (socket && (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING)) return;
    connect();
  }

  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) reconnectNow(); });

  // --- the composer ---------------------------------------------------------------------------

  function updateCounter() {
    const left = maxChars - input.value.length;
    status.textContent = left <= Math.max(50, maxChars * 0.1) ? "还可以输入 " + left + " 字" : "";
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(input.value);
    input.value = "";
    updateCounter();
    input.focus();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener("input", updateCounter);

  // --- start: welcome, settings, history ------------------------------------------------------

  function safeUrl(url) {
    return typeof url === "string" && /^(https?:\/\/|\/(?!\/))/.test(url) ? url : "";
  }

  function addWelcome(welcome, settings) {
    const item = addMessage("bot", welcome.text);
    item.classList.add("msg--welcome");
    const about = el("p", "welcome__about");
    const parts = [];
    if (settings.operator_name) parts.push(el("span", "welcome__operator", "服务提供：" + settings.operator_name));
    parts.push(el("span", "welcome__contact", settings.operator_contact
      ? "联系方式：" + settings.operator_contact : "需要人工帮助？回复“转人工”"));
    const privacy = safeUrl(settings.privacy_url);
    if (privacy) {
      const link = el("a", "welcome__privacy", "隐私政策");
      link.href = privacy;
      link.target = "_blank";
      link.rel = "noopener";
      parts.push(link);
    }
    parts.forEach((part, i) => {
      if (i) about.appendChild(document.createTextNode(" · "));
      about.appendChild(part);
    });
    item.querySelector(".msg__bubble").appendChild(about);
    return item;
  }

  async function start() {
    let body;
    try {
      const response = await fetch("/api/chat/history", { credentials: "same-origin" });
      body = await response.json();
      if (!response.ok) throw new Error(body.error || response.statusText);
    } catch (err) {
      reveal(addMessage("error", "历史记录加载失败，请刷新页面重试。"));
      return;
    }
    const settings = body.settings || {};
    if (settings.max_chars > 0) {
      maxChars = settings.max_chars;
      input.maxLength = maxChars;
    }
    if (body.welcome) addWelcome(body.welcome, settings);
    const messages = body.messages || [];
    let batch = null; // the first item of the newest run of replies
    for (const m of messages) {
      const kind = m.kind || (m.direction === "in" ? "user" : "bot");
      const item = addMessage(kind, m.text);
      batch = m.direction === "in" ? null : batch || item;
      if (TAGS[kind]) historyNotices.set(m.text, (historyNotices.get(m.text) || 0) + 1);
    }
    const last = messages[messages.length - 1];
    if (!last) showChoices(body.welcome ? body.welcome.choices : [], body.welcome ? body.welcome.labels : []);
    else if (last.direction === "out") showChoices(last.choices, last.labels);
    setLive(body.live, false);
    reveal(batch || log.lastElementChild);
  }

  if (window.matchMedia && window.matchMedia("(pointer: fine)").matches) input.focus();
  start().then(connect);
})();
