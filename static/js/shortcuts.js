/* Keyboard shortcuts, listed in the help that `?` opens (templates/_shortcuts.html).
 *
 *   g then d / h / p / c   go to the dashboard, history, problems, companies
 *   j / k                  next / previous row of the page's list
 *   Enter                  open the current row
 *   ?                      the help; Escape closes it and focus goes back
 *
 * `/` (the jump field) is jump.js's. The pages `g` goes to are the help
 * dialog's data-go-<key> attributes, written by Django's {% url %}. The rows
 * are those of the page's `<tbody data-rows="selector">`, the selector naming
 * each row's main link (the sync, the problem, the company, the transaction);
 * a row without one (a "nothing matches" row) is skipped. The mark is on the
 * table, not on each row, so the long tables (built in Python) stay as they
 * are. Like jump.js, nothing fires while someone types in a field or holds
 * Ctrl, Alt or Meta (the browser's own shortcuts). Served as a file for the
 * Content-Security-Policy; without it every page still works with Tab and
 * Enter.
 */
(function () {
  "use strict";

  // How long after `g` its second key still counts.
  var SEQUENCE_MS = 1500;
  var gPressedAt = 0;
  var opener = null;

  // jump.js, loaded before this file, says whether someone is typing.
  var typing = window.syncHealth.typing;

  function help() {
    return document.querySelector("dialog[data-shortcuts]");
  }

  function rowLink(row) {
    return row.querySelector(row.parentNode.getAttribute("data-rows") || "a[href]");
  }

  function rows() {
    var body = document.querySelector("main tbody[data-rows]");
    if (!body) {
      return [];
    }
    return Array.prototype.filter.call(body.children, function (row) {
      return row.tagName === "TR" && rowLink(row);
    });
  }

  // The row holding focus, else the one marked current, else -1.
  function currentIndex(list) {
    var active = document.activeElement;
    var marked = -1;
    for (var i = 0; i < list.length; i++) {
      if (list[i].contains(active)) {
        return i;
      }
      if (marked === -1 && list[i].getAttribute("aria-current") === "true") {
        marked = i;
      }
    }
    return marked;
  }

  // Mark the next (step 1) or previous (step -1) row current and focus its
  // link, so a screen reader says which row it is and Enter opens it.
  function move(step) {
    var list = rows();
    if (!list.length) {
      return false;
    }
    var index = currentIndex(list);
    var next = index === -1 ? (step > 0 ? 0 : list.length - 1) : index + step;
    next = Math.max(0, Math.min(list.length - 1, next));
    list.forEach(function (row) {
      row.removeAttribute("aria-current");
    });
    var row = list[next];
    row.setAttribute("aria-current", "true");
    rowLink(row).focus();
    return true;
  }

  // Enter with the focus nowhere in particular (on the page itself, say after
  // scrolling) opens the row marked current; on a row's link it is the
  // browser's own Enter.
  function openCurrent() {
    var active = document.activeElement;
    if (active && active !== document.body && active.tagName !== "MAIN") {
      return false;
    }
    var list = rows();
    var index = currentIndex(list);
    var link = index === -1 ? null : rowLink(list[index]);
    if (!link) {
      return false;
    }
    window.location.assign(link.href);
    return true;
  }

  function showHelp(dialog) {
    opener = document.activeElement;
    dialog.showModal();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var dialog = help();
    if (!dialog) {
      return;
    }
    dialog.addEventListener("close", function () {
      if (opener && opener !== document.body && document.contains(opener)) {
        opener.focus();
      }
      opener = null;
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    var dialog = help();
    if (!dialog || dialog.open || typing(document.activeElement)) {
      return;
    }
    var key = event.key;
    var sequence = gPressedAt && Date.now() - gPressedAt < SEQUENCE_MS;
    gPressedAt = 0;
    if (sequence) {
      var url = /^[a-z]$/.test(key) ? dialog.getAttribute("data-go-" + key) : null;
      if (url) {
        event.preventDefault();
        window.location.assign(url);
        return;
      }
    }
    var handled = false;
    if (key === "g") {
      gPressedAt = Date.now();
      handled = true;
    } else if (key === "j") {
      handled = move(1);
    } else if (key === "k") {
      handled = move(-1);
    } else if (key === "Enter") {
      handled = openCurrent();
    } else if (key === "?") {
      showHelp(dialog);
      handled = true;
    }
    if (handled) {
      event.preventDefault();
    }
  });
})();
