/* Progressive enhancement only: every page works without this file.
   - "Select all." / "Invert selection." on the lists of users and aliases;
   - menus that change on selection (domain switcher, language) submit themselves;
   - typing a quota, a number of minutes or a date picks its radio button;
   - a new password shows the server's verdict on its strength while it is typed
     (the same rule the server applies when the form is saved). */
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

  // Password strength: asked of the server (POST /password-strength/), never judged here.
  var strengthTimer = null;

  function strengthOutput(input) {
    var output = input.strengthOutput;
    if (!output) {
      output = document.createElement("div");
      output.className = "strength";
      output.setAttribute("aria-live", "polite");
      var meter = document.createElement("meter");
      meter.min = 0;
      meter.max = 4;
      meter.low = 2.5;
      meter.high = 3.5;
      meter.optimum = 4;
      var text = document.createElement("span");
      output.appendChild(meter);
      output.appendChild(text);
      (input.closest(".optional") || input.parentNode).appendChild(output);
      input.strengthOutput = output;
    }
    return output;
  }

  function field(form, names) {
    for (var i = 0; i < names.length; i++) {
      var element = form.elements[names[i]];
      if (element && element.value) return element.value;
    }
    return "";
  }

  function askStrength(input) {
    var form = input.form;
    var output = strengthOutput(input);
    var typed = input.value;
    if (!typed || !form) {
      output.hidden = true;
      return;
    }
    var token = form.querySelector('input[name="csrfmiddlewaretoken"]');
    var data = new FormData();
    data.append("password", typed);
    data.append("login", input.dataset.login || field(form, ["login", "owner_login"]));
    data.append("real_name", input.dataset.realName || field(form, ["real_name"]));
    data.append("domain", input.dataset.domain || document.body.dataset.domain ||
      (form.elements.owner_login ? field(form, ["name"]) : ""));
    fetch("/password-strength/", {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: {"X-CSRFToken": token ? token.value : ""}
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (answer) {
      if (!answer || input.value !== typed) return;
      output.querySelector("meter").value = answer.score;
      output.querySelector("span").textContent = answer.message;
      output.classList.toggle("weak", !answer.ok);
      output.hidden = false;
    }).catch(function () { output.hidden = true; });
  }

  document.addEventListener("input", function (event) {
    var input = event.target.closest("input[data-strength]");
    if (!input) return;
    clearTimeout(strengthTimer);
    strengthTimer = setTimeout(function () { askStrength(input); }, 250);
  });
})();
