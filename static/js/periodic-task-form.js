/* Django admin, periodic task form (templates/admin/djcelery/…): under the
 * crontab's help, the chosen schedule in words. django-celery-beat does this
 * with an inline script, which the Content-Security-Policy does not run.
 */
(function ($) {
  "use strict";

  var readable = JSON.parse(document.getElementById("readable-crontabs").textContent);
  var help = $(".field-crontab .help");
  var original = help.text();

  $(".field-crontab_translation").hide();
  $(".field-crontab").on("change", function () {
    var words = readable[$("#id_crontab").val()];
    help.empty().append(document.createTextNode(original));
    if (words) {
      help.append($("<br>"), document.createTextNode("Translation: " + words));
    }
  });
})(django.jQuery);
