// Fills a form's text area from a file the person picks (a certificate or key in PEM), so that
// the form is still sent as plain fields; without script the text area is pasted into instead.
document.querySelectorAll("input[type=file][data-fill]").forEach(function (picker) {
  picker.addEventListener("change", function () {
    var target = document.getElementById(picker.getAttribute("data-fill"));
    var file = picker.files && picker.files[0];
    if (!target || !file) {
      return;
    }
    file.text().then(function (text) {
      target.value = text;
    });
  });
});
