/* The header's jump field: `/` anywhere on a page puts the cursor in it.
 *
 * Not while someone types in another field (a `/` in a search or a note is
 * text), nor with a modifier held (the browser's own shortcuts). Served as a
 * file for the Content-Security-Policy, like app.js; without it the field
 * still works with a click.
 */
(function () {
  "use strict";

  // Whether keys pressed now are someone typing (a field has the focus): no
  // shortcut then. Shared with shortcuts.js, which loads after this file.
  function typing(element) {
    if (!element || element === document.body) {
      return false;
    }
    if (element.isContentEditable) {
      return true;
    }
    var tag = element.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }
  window.syncHealth = window.syncHealth || {};
  window.syncHealth.typing = typing;

  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) {
      return;
    }
    if (typing(document.activeElement)) {
      return;
    }
    var field = document.querySelector("input[data-jump-field]");
    if (!field) {
      return;
    }
    event.preventDefault();
    field.focus();
    field.select();
  });
})();
