/* What the pages do in the browser beyond htmx.
 *
 * The Content-Security-Policy runs no inline script, so templates hold no
 * <script> body and no onclick=/onchange=/onsubmit= handler: they mark
 * elements with data- attributes, and this file (loaded once, by _base.html)
 * gives those their behaviour. The listeners sit on the document, so they
 * also work for content htmx swaps in later. Every page works without it.
 */
(function () {
  "use strict";

  // A copy button says how its copy went, then, a moment later, what it does again.
  // Its label is kept as nodes: a hidden part ("the sync ID") stays hidden.
  function copied(button, text) {
    if (!button.copyLabel) {
      button.copyLabel = Array.prototype.map.call(button.childNodes, function (node) {
        return node.cloneNode(true);
      });
    }
    navigator.clipboard.writeText(text).then(
      function () { button.textContent = "Copied"; },
      function () { button.textContent = "Copy failed"; }
    ).then(function () {
      clearTimeout(button.copyReset);
      button.copyReset = setTimeout(function () {
        button.replaceChildren.apply(button, button.copyLabel.map(function (node) {
          return node.cloneNode(true);
        }));
      }, 2000);
    });
  }

  // <button data-copy="text">: put the text on the clipboard and say so.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button || !navigator.clipboard) {
      return;
    }
    copied(button, button.dataset.copy);
  });

  // <button data-menu-toggle>: on a phone, the header's links fold away behind
  // it (app.css hides them while the header is not .open).
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-menu-toggle]");
    var header = button && button.closest("header");
    if (!header) {
      return;
    }
    var open = !header.classList.contains("open");
    header.classList.toggle("open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });
  document.addEventListener("keydown", function (event) {
    var header = event.key === "Escape" && document.querySelector(".topbar.open");
    var button = header && header.querySelector("button[data-menu-toggle]");
    if (button) {
      header.classList.remove("open");
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }
  });

  // The header's theme switch comes back to the page as it is now: htmx may have
  // moved its address on (filters, pages) since the server wrote `next`.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches("form.theme-switch") && form.elements.next) {
      form.elements.next.value = window.location.pathname + window.location.search;
    }
  });

  // <form data-disable-on-submit>: a double click posts once.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form[data-disable-on-submit]")) {
      return;
    }
    form.querySelectorAll("button[type=submit]").forEach(function (button) {
      button.disabled = true;
    });
  });

  // <fieldset data-range-picker>: a preset clears the custom dates, a date
  // picks "Custom". In the capture phase, so the form is right before htmx
  // (listening on the inputs themselves) reads it to send.
  document.addEventListener("change", function (event) {
    var input = event.target;
    var picker = input.closest && input.closest("[data-range-picker]");
    if (!picker) {
      return;
    }
    if (input.name === "range" && input.value !== "custom") {
      picker.querySelectorAll("input[type=date]").forEach(function (date) {
        date.value = "";
      });
    } else if (input.type === "date") {
      var custom = picker.querySelector("input[name=range][value=custom]");
      if (custom) {
        custom.checked = true;
      }
    }
  }, true);

  // Live regions (hx-trigger="every …" with data-poll) ask nothing while
  // the page is out of sight; `page-visible` lets one catch up at once.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var element = event.detail && event.detail.elt;
    if (document.visibilityState !== "visible" && element && element.hasAttribute("data-poll")) {
      event.preventDefault();
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      document.dispatchEvent(new CustomEvent("page-visible"));
    }
  });

  // <form data-suggest-zone>: offer the browser's own time zone when the
  // person has not chosen one yet (the form shows UTC).
  function suggestZone(root) {
    root.querySelectorAll("form[data-suggest-zone] select[name=time_zone]").forEach(function (select) {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      var offered = Array.prototype.some.call(select.options, function (option) {
        return option.value === zone;
      });
      if (select.value === "UTC" && offered) {
        select.value = zone;
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { suggestZone(document); });

  // <button data-copy-from="#id">: copy that field's value (a secret offered
  // before it is saved) to the clipboard.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy-from]");
    var field = button && document.querySelector(button.dataset.copyFrom);
    if (!field || !navigator.clipboard) {
      return;
    }
    copied(button, field.value);
  });

  // <div data-shown-when="name=a,b">: shown only while the form's field
  // `name` holds one of the values (a rule's threshold for the conditions
  // that take one). Without this script everything stays shown.
  function showWhen(form) {
    form.querySelectorAll("[data-shown-when]").forEach(function (element) {
      var rule = element.dataset.shownWhen.split("=");
      var field = form.elements.namedItem(rule[0]);
      element.hidden = !!field && rule[1].split(",").indexOf(field.value) === -1;
    });
  }
  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (form && form.querySelector("[data-shown-when]")) {
      showWhen(form);
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form").forEach(function (form) {
      if (form.querySelector("[data-shown-when]")) {
        showWhen(form);
      }
    });
  });

  // <div role="tablist" data-tablist> of links: the arrow keys, Home and End
  // move between the tabs (the WAI-ARIA tabs pattern); Enter follows one.
  document.addEventListener("keydown", function (event) {
    var tab = event.target.closest && event.target.closest("[data-tablist] [role=tab]");
    if (!tab) {
      return;
    }
    var tabs = Array.prototype.slice.call(tab.parentNode.querySelectorAll("[role=tab]"));
    var index = tabs.indexOf(tab);
    var next = {
      ArrowRight: tabs[(index + 1) % tabs.length],
      ArrowLeft: tabs[(index - 1 + tabs.length) % tabs.length],
      Home: tabs[0],
      End: tabs[tabs.length - 1]
    }[event.key];
    if (next) {
      event.preventDefault();
      next.focus();
    }
  });
})();
