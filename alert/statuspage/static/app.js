// Picket status page: refreshes the banner, the matrix and the open incidents in place
// from /api/v1/status. The page is complete without this script; every value from the
// API is set with textContent or setAttribute, never parsed as HTML.
(function () {
  "use strict";

  var CELL_TEXT = {
    up: ["Up", "\u2713"],
    degraded: ["Degraded", "!"],
    down: ["Down", "\u2715"],
    no_data: ["No data", "?"],
    not_offered: ["Not offered", "\u2013"]
  };
  var MAX_ERROR_CHARS = 300;
  var VOTES_TITLE = "vantages that see this failing, of the live ones";
  var MEMBER_STATES = ["alive", "suspect", "dead", "left"];
  var DEGRADED_SUFFIX = "#degraded";
  var body = document.body;
  var every = parseInt(body.getAttribute("data-refresh-ms"), 10);
  if (!(every >= 1000)) {
    every = 10000;
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  function utc(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) {
      return "";
    }
    return d.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  function isoSeconds(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? "" : d.toISOString().slice(0, 19) + "Z";
  }

  // humanDuration mirrors page.go.
  function humanDuration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) { return s + "s"; }
    if (s < 3600) { return Math.floor(s / 60) + "m"; }
    if (s < 86400) { return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m"; }
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }

  function truncate(s, n) {
    var chars = Array.from(s);
    return chars.length <= n ? s : chars.slice(0, n).join("") + "\u2026";
  }

  function renderBanner(st) {
    var banner = document.getElementById("banner");
    var scope = (st.scope && st.scope.kind) || "none";
    banner.textContent = st.banner || "";
    banner.setAttribute("data-scope", scope);
    banner.className = "banner scope-" + scope;
    var impaired = document.getElementById("impaired");
    impaired.hidden = !st.impaired;
    impaired.setAttribute("data-impaired", st.impaired ? "true" : "false");
    document.getElementById("vantage").textContent = st.vantage || "";
    var gen = document.getElementById("generated");
    gen.textContent = utc(st.generated);
    gen.setAttribute("datetime", isoSeconds(st.generated));
  }

  // votesSuffix, journeyLine and cellTooltip mirror page.go.
  function votesSuffix(votes) {
    return votes ? " \u00b7 vantages: " + votes : "";
  }

  function journeyLine(t) {
    var line = t.journey + ": " + t.last_status;
    if (t.state && t.state !== "ok") {
      line += " (" + t.state;
      if (t.since) { line += " since " + utc(t.since); }
      line += ")";
    }
    line += votesSuffix(t.votes);
    if (t.last_error) { line += " \u2014 " + truncate(t.last_error, MAX_ERROR_CHARS); }
    return line;
  }

  function cellTooltip(product, region, label, targets) {
    var lines = [product + " in " + region + ": " + label];
    var up = 0;
    targets.forEach(function (t) {
      if (!t.last_status) {
        lines.push(t.journey + ": no result yet" + votesSuffix(t.votes));
      } else if (t.state === "ok" && t.last_status === "up") {
        up++;
        if (t.votes) { lines.push(journeyLine(t)); }
      } else {
        lines.push(journeyLine(t));
      }
      if (t.warning) { lines.push(t.journey + ": " + t.warning); }
    });
    if (up > 0) { lines.push(up + " of " + targets.length + " journeys up"); }
    return lines.join("\n");
  }

  function headerCell(name, title, scope, attrs) {
    var th = el("th", attrs);
    th.setAttribute("scope", scope);
    th.appendChild(document.createTextNode(title || name));
    if (title) { th.appendChild(el("small", {}, name)); }
    return th;
  }

  function regionHeader(r) {
    var th = el("th", { scope: "col", "data-region": r.name });
    th.appendChild(document.createTextNode(r.name));
    if (r.title) { th.appendChild(el("small", {}, r.title)); }
    return th;
  }

  function matrixCell(product, region, status, targets, votes) {
    var text = CELL_TEXT[status] || [status, "?"];
    var td = el("td", {
      "class": "cell s-" + status,
      "data-product": product,
      "data-region": region,
      "data-status": status,
      title: cellTooltip(product, region, text[0], targets)
    });
    td.appendChild(el("span", { "class": "sym", "aria-hidden": "true" }, text[1]));
    td.appendChild(document.createTextNode(" "));
    td.appendChild(el("span", { "class": "label" }, text[0]));
    if (votes) { td.appendChild(el("small", { "class": "votes", title: VOTES_TITLE }, votes)); }
    return td;
  }

  // renderMatrix rebuilds the table, so a reloaded config's new products or regions show.
  function renderMatrix(st) {
    var table = document.getElementById("matrix");
    var regions = st.regions || [];
    var products = (st.products || []).slice().sort(function (a, b) { return a.priority - b.priority; });
    var matrix = st.matrix || {};
    var votes = st.votes || {};
    var byCell = {};
    (st.targets || []).forEach(function (t) {
      var k = t.product + "\u0000" + t.region;
      (byCell[k] = byCell[k] || []).push(t);
    });
    var thead = el("thead");
    var hr = el("tr");
    hr.appendChild(el("th", { scope: "col" }, "Product"));
    regions.forEach(function (r) { hr.appendChild(regionHeader(r)); });
    thead.appendChild(hr);
    var tbody = el("tbody");
    products.forEach(function (p) {
      var tr = el("tr", { "data-product": p.name });
      tr.appendChild(headerCell(p.name, p.title, "row", { title: "priority " + p.priority }));
      regions.forEach(function (r) {
        var row = matrix[p.name] || {};
        var status = Object.prototype.hasOwnProperty.call(row, r.name) ? row[r.name] : "not_offered";
        var cellVotes = (votes[p.name] || {})[r.name] || "";
        tr.appendChild(matrixCell(p.name, r.name, status, byCell[p.name + "\u0000" + r.name] || [], cellVotes));
      });
      tbody.appendChild(tr);
    });
    clear(table);
    table.appendChild(thead);
    table.appendChild(tbody);
  }

  function scopeLabel(scope, subject) {
    switch (scope) {
      case "global": return "Global";
      case "region": return "Region " + subject;
      case "product": return "Product " + subject;
    }
    return "Target " + subject;
  }

  function incidentNode(inc, now) {
    var art = el("article", {
      "class": "incident scope-" + inc.scope,
      "data-incident": inc.key,
      "data-scope": inc.scope,
      "data-condition": inc.condition
    });
    var h3 = el("h3");
    h3.appendChild(el("span", { "class": "scope" }, scopeLabel(inc.scope, inc.subject)));
    h3.appendChild(document.createTextNode(" "));
    h3.appendChild(el("span", { "class": "cond" }, inc.condition));
    if (inc.absorbed_into) {
      h3.appendChild(document.createTextNode(" "));
      h3.appendChild(el("span", { "class": "tag" }, "part of " + inc.absorbed_into));
    }
    if (inc.silenced) {
      h3.appendChild(document.createTextNode(" "));
      h3.appendChild(el("span", { "class": "tag" }, "silenced"));
    }
    art.appendChild(h3);
    var facts = el("p", { "class": "facts" });
    facts.appendChild(document.createTextNode("Since "));
    facts.appendChild(el("time", { datetime: isoSeconds(inc.opened) }, utc(inc.opened)));
    facts.appendChild(document.createTextNode(" (" + humanDuration(now - new Date(inc.opened).getTime()) + ") \u00b7 "));
    facts.appendChild(el("a", { href: "api/v1/incidents/" + encodeURIComponent(inc.key.split("/").join("~")) + "/timeline" }, "timeline JSON"));
    art.appendChild(facts);
    art.appendChild(el("p", { "class": "targets" }, "Targets: " + (inc.targets || []).join(", ")));
    if ((inc.updates || []).length > 0) {
      var ups = el("ol", { "class": "updates" });
      inc.updates.forEach(function (u) {
        var li = el("li");
        li.appendChild(el("span", { "class": "kind" }, u.status));
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("time", { datetime: isoSeconds(u.at) }, utc(u.at)));
        li.appendChild(document.createTextNode((u.author ? " \u00b7 " + u.author : "") + ": " + u.text));
        ups.appendChild(li);
      });
      art.appendChild(ups);
    }
    var shots = document.body.dataset.screenshots !== "1" ? [] : Object.keys(inc.screenshots || {}).sort().filter(function (target) {
      return /^[A-Za-z0-9._-]+\.png$/.test(inc.screenshots[target]); // as the server serves them
    });
    if (shots.length > 0) {
      var box = el("div", { "class": "shots" });
      shots.forEach(function (target) {
        var src = "screenshots/" + inc.screenshots[target];
        var fig = el("figure");
        var a = el("a", { href: src });
        a.appendChild(el("img", { src: src, alt: "Screenshot of " + target + " when it failed", loading: "lazy" }));
        fig.appendChild(a);
        fig.appendChild(el("figcaption", {}, target));
        box.appendChild(fig);
      });
      art.appendChild(box);
    }
    var timeline = inc.timeline || [];
    var details = el("details", { open: "" });
    details.appendChild(el("summary", {}, "Timeline (" + timeline.length + " events)"));
    var ol = el("ol", { "class": "timeline" });
    timeline.forEach(function (ev) {
      var li = el("li");
      li.appendChild(el("time", { datetime: isoSeconds(ev.at) }, utc(ev.at)));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", { "class": "kind" }, ev.kind));
      li.appendChild(document.createTextNode(" " + ev.text));
      ol.appendChild(li);
    });
    details.appendChild(ol);
    art.appendChild(details);
    return art;
  }

  function renderIncidents(st) {
    var box = document.getElementById("open-incidents");
    var now = new Date(st.generated).getTime();
    if (isNaN(now)) { now = Date.now(); }
    var incs = st.incidents || [];
    clear(box);
    if (incs.length === 0) {
      box.appendChild(el("p", { "class": "none" }, "No open incidents."));
      return;
    }
    incs.forEach(function (inc) { box.appendChild(incidentNode(inc, now)); });
  }

  // quorumLine, failingOf, memberRow and fleetBanners mirror fleet.go and page.html.
  function quorumLine(f) {
    var line = "Quorum " + f.quorum + " of " + f.live + " live vantages";
    return f.quorum_setting === 0 ? line + " (majority)" : line;
  }

  function failingOf(ids) {
    var condition = {};
    var order = [];
    ids.forEach(function (id) {
      var degraded = id.length > DEGRADED_SUFFIX.length && id.slice(-DEGRADED_SUFFIX.length) === DEGRADED_SUFFIX;
      var target = degraded ? id.slice(0, -DEGRADED_SUFFIX.length) : id;
      if (!Object.prototype.hasOwnProperty.call(condition, target)) {
        order.push(target);
        condition[target] = "degraded";
      }
      if (!degraded) { condition[target] = "down"; }
    });
    var degradedCount = 0;
    var lines = order.map(function (target) {
      if (condition[target] === "degraded") { degradedCount++; }
      return target + ": " + condition[target];
    });
    var count = String(order.length);
    if (degradedCount > 0) { count += " (" + degradedCount + " degraded)"; }
    return { count: count, list: lines.join("\n") };
  }

  function memberRow(m, generated) {
    var tr = el("tr", { "data-member": m.name, "data-state": m.state });
    var th = el("th", { scope: "row" }, m.name);
    if (m.self) {
      th.appendChild(document.createTextNode(" "));
      th.appendChild(el("span", { "class": "tag self" }, "this vantage"));
    }
    tr.appendChild(th);
    var stateClass = MEMBER_STATES.indexOf(m.state) >= 0 ? "m-" + m.state : "m-unknown";
    var stateTd = el("td");
    stateTd.appendChild(el("span", { "class": "member-state " + stateClass }, m.state));
    tr.appendChild(stateTd);
    var heard = el("td");
    if (m.last_heard) {
      heard.appendChild(el("time", { datetime: isoSeconds(m.last_heard) }, utc(m.last_heard)));
      heard.appendChild(document.createTextNode(" (" + humanDuration(generated - new Date(m.last_heard).getTime()) + " ago)"));
    } else {
      heard.textContent = m.self ? "\u2014" : "never";
    }
    tr.appendChild(heard);
    var failing = failingOf(m.failing || []);
    var attrs = { "class": "num" };
    if (failing.list) { attrs.title = failing.list; }
    tr.appendChild(el("td", attrs, failing.count));
    tr.appendChild(el("td", { "class": "addr" }, m.addr));
    return tr;
  }

  function fleetBanners(f) {
    var alone = "";
    if (f && f.alone) {
      alone = "This vantage is alone: no peer answers";
      if (f.alone_since) { alone += " since " + utc(f.alone_since); }
      alone += "; it pages on its own evidence after " + f.alone_after;
    }
    return { alone: alone, isolated: f && f.isolated ? "This vantage is isolated: its pages say so" : "" };
  }

  function showLine(id, text) {
    var p = document.getElementById(id);
    p.textContent = text;
    p.hidden = !text;
  }

  // renderFleet rebuilds the Vantages section, or hides it without a cluster.
  function renderFleet(st) {
    var f = st.fleet;
    var banners = fleetBanners(f);
    showLine("alone", banners.alone);
    showLine("isolated", banners.isolated);
    var section = document.getElementById("fleet");
    clear(section);
    section.hidden = !f;
    if (!f) { return; }
    var generated = new Date(st.generated).getTime();
    if (isNaN(generated)) { generated = Date.now(); }
    section.appendChild(el("h2", { id: "fleet-h" }, "Vantages"));
    section.appendChild(el("p", { id: "quorum", "class": "quorum" }, quorumLine(f)));
    var scroll = el("div", { "class": "scroll" });
    var table = el("table", { id: "members", "class": "members" });
    var thead = el("thead");
    var hr = el("tr");
    ["Vantage", "State", "Last heard", "Failing targets", "Address"].forEach(function (h) {
      var attrs = { scope: "col" };
      if (h === "Failing targets") { attrs["class"] = "num"; }
      hr.appendChild(el("th", attrs, h));
    });
    thead.appendChild(hr);
    var tbody = el("tbody");
    (f.members || []).forEach(function (m) { tbody.appendChild(memberRow(m, generated)); });
    table.appendChild(thead);
    table.appendChild(tbody);
    scroll.appendChild(table);
    section.appendChild(scroll);
  }

  function apply(st) {
    renderBanner(st);
    renderMatrix(st);
    renderFleet(st);
    renderIncidents(st);
    document.getElementById("refresh-state").textContent = "";
    body.setAttribute("data-refreshed", String(Date.now()));
  }

  function showError(err) {
    document.getElementById("refresh-state").textContent =
      "\u00b7 refresh failed (" + (err && err.message ? err.message : "network error") + "); showing older data";
  }

  function refresh() {
    fetch("api/v1/status", { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(apply)
      .catch(showError)
      .then(function () { setTimeout(refresh, every); });
  }

  setTimeout(refresh, every);
})();
