/* Progressive enhancement only: every page works without this file.
   - "Select all." / "Invert selection." on the lists of users and aliases;
   - menus that change on selection (domain switcher, language) submit themselves;
   - typing a quota, a number of minutes or a date picks its radio button. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-select]");
    if (!button) return;
    var form = document.getElementById(button.dataset.form);
    if (!form) return;
    var boxes = form.querySelectorAll('input[type="checkbox"][name="selected"]');
    boxes.forEach(function (box) {
      box.checked = button.dataset.select === "all" ? true : !box.checked;
    });
    event.preventDefault();
  });

  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-autosubmit]");
    if (select && select.form) select.form.submit();
  });

  document.addEventListener("input", function (event) {
    var group = event.target.closest(".optional");
    if (!group || event.target.type === "radio") return;
    var radio = group.querySelector('input[type="radio"][value="value"]');
    if (radio) radio.checked = true;
  });
})();
