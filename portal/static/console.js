// Operator console: live values from /konsol/events (server-sent events) and controls sent in the
// background. A control shows "pending" until the gateway's response arrives on the event stream;
// nothing is shown as done before the device confirmed it, and a final result never turns back into
// "pending". No framework, no third-party code.
"use strict";
(function () {
  // The page's language's texts (portal/locale), rendered by the server into the console's data-text.
  var root = document.querySelector(".console");
  var T = JSON.parse((root && root.getAttribute("data-text")) || "{}");
  var TEXT = T.status || {};
  var AVAIL = T.avail || {};
  function fill(text, fields) {
    return String(text).replace(/\{(\w+)\}/g, function (m, k) { return k in fields ? String(fields[k]) : m; });
  }
  var outputs = {}; // transaction -> <output> element of the control that sent it
  // The gateway's response often arrives on the event stream before the POST that sent the command has
  // returned its transaction id. Results no control has claimed yet are kept here (for EARLY_KEEP_MS, as
  // they include other consoles' commands) so that the POST's callback applies them instead of waiting.
  var early = {}; // transaction -> {data: command event, at: Date.now()}
  var EARLY_KEEP_MS = 60000;

  function all(sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); }

  function ageText(ts) {
    if (!ts) { return "\u2014"; }
    var s = Math.max(0, (Date.now() - Date.parse(ts)) / 1000);
    if (s < 60) { return fill(T.age_seconds, { n: Math.round(s) }); }
    if (s < 3600) { return fill(T.age_minutes, { n: Math.round(s / 60) }); }
    return fill(T.age_hours, { n: (s / 3600).toFixed(1) });
  }

  function setState(device, state) {
    all('.v[data-device="' + device + '"]').forEach(function (el) {
      var p = el.getAttribute("data-point");
      if (Object.prototype.hasOwnProperty.call(state, p)) {
        var unit = el.getAttribute("data-unit");
        var v = state[p]; // null: the device reports no valid value (NaN/Inf, docs/mqtt.md)
        el.textContent = v === null ? "\u2014" : String(v) + (unit ? " " + unit : "");
        el.setAttribute("data-value", v === null ? "" : String(v));
      }
    });
    if (!state.ts) { return; } // a command's read-back carries no time of its own
    all('.age[data-age="' + device + '"]').forEach(function (el) {
      el.setAttribute("data-ts", state.ts || "");
      el.textContent = ageText(state.ts);
    });
  }

  function setAvail(device, value) {
    all('.avail[data-avail="' + device + '"]').forEach(function (el) {
      el.className = "avail " + value;
      el.textContent = AVAIL[value] || value;
    });
  }

  function setBridge(value) {
    var el = document.getElementById("bridge");
    if (el) { el.className = "avail " + value; el.textContent = value; }
  }

  function resultText(status, error) { return (TEXT[status] || status) + (error ? ": " + error : ""); }

  function commandRow(txn, action, status, error) {
    var body = document.getElementById("commands");
    if (!body) { return; }
    var row = body.querySelector('tr[data-txn="' + txn + '"]');
    if (!row) {
      row = document.createElement("tr");
      row.setAttribute("data-txn", txn);
      ["", "", action, txn, ""].forEach(function (t) {
        var td = document.createElement("td");
        td.textContent = t;
        row.appendChild(td);
      });
      row.children[0].textContent = new Date().toLocaleTimeString();
      row.children[1].textContent = T.you;
      body.insertBefore(row, body.firstChild);
    }
    var cell = row.children[4];
    // A row already showing a final result keeps it (server-rendered rows carry it in their class too).
    var shown = cell.className.replace("result", "").trim();
    if (status === "pending" && shown && shown !== "pending") { return; }
    cell.className = "result " + status;
    cell.textContent = resultText(status, error);
  }

  function showResult(out, data) {
    out.className = "cmdstatus " + data.status;
    out.textContent = resultText(data.status, data.error);
  }

  function keepEarly(data) {
    var now = Date.now();
    Object.keys(early).forEach(function (t) { if (now - early[t].at > EARLY_KEEP_MS) { delete early[t]; } });
    early[data.transaction] = { data: data, at: now };
  }

  function onCommand(data) {
    commandRow(data.transaction, data.device, data.status, data.error);
    var out = outputs[data.transaction];
    if (out) {
      delete outputs[data.transaction];
      showResult(out, data);
    } else if (data.status !== "pending") {
      keepEarly(data);
    }
    if (data.state && Object.keys(data.state).length) {
      // The state topic already carried the read-back values; this only covers a missed state message.
      setState(data.device, data.state);
    }
  }

  function onScene(data) {
    all('output.scenestatus[data-scene="' + data.scene + '"]').forEach(function (out) {
      if (data.done) {
        out.className = "scenestatus " + (data.ok ? "ok" : "failed");
        out.textContent = (data.ok ? T.scene_ok : T.scene_failed) + " (" +
          fill(data.steps.length === 1 ? T.steps_one : T.steps_other, { n: data.steps.length }) + ")";
      } else {
        out.className = "scenestatus pending";
        out.textContent = fill(T.step_of, { step: data.step, of: data.of }) + ": " +
          data.commands.map(function (c) { return c.device + " " + (TEXT[c.status] || c.status); }).join(", ");
      }
    });
  }

  // ---- alarms (docs/alarms.md): the list and the banner follow bcc/alarms/state/<alarm> live ----
  var ALARM_TEXT = T.alarm_state || {};
  var SEVERITY = ["critical", "high", "medium", "low"];
  var SEVERITY_TEXT = T.severity || {};
  var alarms = {}; // alarm id -> retained state
  var audio = null; // created on the first interaction: browsers allow sound only after one

  function beep() {
    if (!audio) { return; }
    var osc = audio.createOscillator();
    var gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.2;
    osc.connect(gain);
    gain.connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.4);
  }

  function unlockAudio() {
    if (!audio && (window.AudioContext || window.webkitAudioContext)) {
      audio = new (window.AudioContext || window.webkitAudioContext)();
    }
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function alarmForm(a, action, csrf, maxShelve) {
    var form = el("form", { "class": "alarmact", action: "/konsol/alarm", method: "post" });
    [["csrf_token", csrf], ["alarm", a.alarm], ["action", action]].forEach(function (kv) {
      form.appendChild(el("input", { type: "hidden", name: kv[0], value: kv[1] }));
    });
    var label;
    if (action === "ack") {
      label = el("label", {}, T.note + " ");
      label.appendChild(el("input", { name: "note", maxlength: "500" }));
      form.appendChild(label);
      form.appendChild(el("button", { type: "submit" }, T.ack));
    } else if (action === "shelve") {
      label = el("label", {}, T.reason + " ");
      label.appendChild(el("input", { name: "note", maxlength: "500", required: "" }));
      form.appendChild(label);
      label = el("label", {}, " " + T.minutes + " ");
      label.appendChild(el("input", { name: "minutes", type: "number", min: "1", max: maxShelve, value: "60", required: "" }));
      form.appendChild(label);
      form.appendChild(el("button", { type: "submit" }, T.shelve));
    } else {
      form.appendChild(el("button", { type: "submit" }, T.unshelve));
    }
    return form;
  }

  function renderAlarms() {
    var body = document.getElementById("alarms");
    var section = document.getElementById("alarm-section");
    if (!body || !section) { return; }
    var csrf = section.getAttribute("data-csrf");
    var maxShelve = section.getAttribute("data-max-shelve");
    var shown = Object.keys(alarms).map(function (k) { return alarms[k]; })
      .filter(function (a) { return a.state && a.state !== "normal"; });
    shown.sort(function (x, y) {
      var s = SEVERITY.indexOf(x.severity) - SEVERITY.indexOf(y.severity);
      return s !== 0 ? s : String(y.since || "").localeCompare(String(x.since || ""));
    });
    while (body.firstChild) { body.removeChild(body.firstChild); }
    if (!shown.length) {
      var none = el("tr", { "class": "none" });
      none.appendChild(el("td", { colspan: "6" }, T.no_alarms));
      body.appendChild(none);
    }
    shown.forEach(function (a) {
      var row = el("tr", { "class": "alarm " + a.severity + " " + a.state, "data-alarm": a.alarm });
      row.appendChild(el("td", {}, SEVERITY_TEXT[a.severity] || a.severity));
      var what = el("td", {}, (a.message && (a.message[T.lang] || a.message.id)) || a.alarm);
      what.appendChild(el("small", {}, " (" + a.alarm + ")"));
      row.appendChild(what);
      row.appendChild(el("td", {}, a.value === null || a.value === undefined ? "\u2014" : String(a.value)));
      row.appendChild(el("td", {}, (ALARM_TEXT[a.state] || a.state) +
        (a.shelved ? ": " + a.shelved.reason + " (" + a.shelved.by + ")" : "")));
      row.appendChild(el("td", {}, a.since || "\u2014"));
      var acts = el("td", {});
      if (a.state === "active_unacked" || a.state === "cleared_unacked") { acts.appendChild(alarmForm(a, "ack", csrf, maxShelve)); }
      acts.appendChild(alarmForm(a, a.state === "shelved" ? "unshelve" : "shelve", csrf, maxShelve));
      row.appendChild(acts);
      body.appendChild(row);
    });
    var banner = document.getElementById("alarmbanner");
    var unacked = shown.filter(function (a) { return a.state === "active_unacked"; });
    if (banner) {
      banner.className = "alarmbanner" + (unacked.length ? " " + unacked[0].severity : "");
      banner.textContent = unacked.length ?
        fill(unacked.length === 1 ? T.unacked_one : T.unacked_other, {
          n: unacked.length,
          severity: SEVERITY_TEXT[unacked[0].severity] || unacked[0].severity,
          message: (unacked[0].message && (unacked[0].message[T.lang] || unacked[0].message.id)) || unacked[0].alarm
        }) :
        T.no_unacked;
    }
  }

  function onAlarm(data) {
    var before = alarms[data.alarm];
    if (data.state) { alarms[data.alarm] = data.state; } else { delete alarms[data.alarm]; }
    if (data.state && data.state.state === "active_unacked" && (!before || before.state !== "active_unacked")) { beep(); }
    renderAlarms();
  }

  function connect() {
    var live = document.getElementById("live");
    var es = new EventSource("/konsol/events");
    es.addEventListener("open", function () { if (live) { live.textContent = "langsung"; } });
    es.addEventListener("error", function () { if (live) { live.textContent = "terputus, menyambung ulang"; } });
    es.addEventListener("snapshot", function (e) {
      var snap = JSON.parse(e.data);
      Object.keys(snap.states).forEach(function (d) { setState(d, snap.states[d]); });
      Object.keys(snap.availability).forEach(function (d) { setAvail(d, snap.availability[d]); });
      setBridge(snap.bridge);
      alarms = snap.alarms || {};
      renderAlarms();
    });
    es.addEventListener("alarm", function (e) { onAlarm(JSON.parse(e.data)); });
    es.addEventListener("state", function (e) { var d = JSON.parse(e.data); setState(d.device, d.state); });
    es.addEventListener("availability", function (e) { var d = JSON.parse(e.data); setAvail(d.device, d.value); });
    es.addEventListener("bridge", function (e) { setBridge(JSON.parse(e.data).value); });
    es.addEventListener("command", function (e) { onCommand(JSON.parse(e.data)); });
    es.addEventListener("scene", function (e) { onScene(JSON.parse(e.data)); });
  }

  function outputFor(form) {
    var holder = form.closest("li") || form.parentElement;
    return form.querySelector("output.cmdstatus") || (holder && holder.querySelector("output.cmdstatus"));
  }

  // Fallback when the event stream missed the result (reconnect, another worker's timeout): ask the audit.
  function poll(txn, tries) {
    if (!outputs[txn] || tries <= 0) { return; }
    fetch("/konsol/perintah/" + encodeURIComponent(txn), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (s && s.status !== "pending") {
          onCommand({ transaction: txn, device: s.device, status: s.status, error: s.error, state: {} });
        } else {
          setTimeout(function () { poll(txn, tries - 1); }, 2000);
        }
      })
      .catch(function () { setTimeout(function () { poll(txn, tries - 1); }, 2000); });
  }

  function onSubmit(e) {
    var form = e.target;
    if (form.classList && form.classList.contains("scene")) { return onSceneSubmit(e); }
    if (!form.classList || !form.classList.contains("cmd")) { return; }
    e.preventDefault();
    var out = outputFor(form);
    if (out) { out.className = "cmdstatus pending"; out.textContent = TEXT.pending; }
    // getAttribute: the form has an input named "action", which shadows form.action.
    fetch(form.getAttribute("action"), {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { Accept: "application/json" },
      credentials: "same-origin"
    }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    }).then(function (data) {
      data.commands.forEach(function (c) {
        var seen = early[c.transaction];
        if (seen) { // the result came first: show it, nothing left to wait for
          delete early[c.transaction];
          if (out) { showResult(out, seen.data); }
          return;
        }
        if (out) { outputs[c.transaction] = out; }
        commandRow(c.transaction, c.action, "pending", "");
        setTimeout(function () { poll(c.transaction, 10); }, 7000);
      });
    }).catch(function (err) {
      if (out) { out.className = "cmdstatus rejected"; out.textContent = "tidak terkirim: " + err.message; }
    });
  }

  function onSceneSubmit(e) {
    var form = e.target;
    e.preventDefault();
    var out = form.parentElement.querySelector("output.scenestatus");
    if (out) { out.className = "scenestatus pending"; out.textContent = T.scene_started; }
    fetch(form.getAttribute("action"), {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { Accept: "application/json" },
      credentials: "same-origin"
    }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
    }).catch(function (err) {
      if (out) { out.className = "scenestatus failed"; out.textContent = "tidak terkirim: " + err.message; }
    });
  }

  document.addEventListener("submit", onSubmit);
  document.addEventListener("click", unlockAudio);
  document.addEventListener("keydown", unlockAudio);
  setInterval(function () {
    all(".age[data-ts]").forEach(function (el) { el.textContent = ageText(el.getAttribute("data-ts")); });
  }, 1000);
  if (window.EventSource) { connect(); }
})();
