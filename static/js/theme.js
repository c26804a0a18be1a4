// Applies the user's stored theme before the first paint (loaded blocking in <head>).
// Without a stored choice the page follows the system preference through CSS alone.
(function () {
  try {
    var theme = localStorage.getItem("streamwarden-theme");
    if (theme === "dark" || theme === "light") {
      document.documentElement.setAttribute("data-theme", theme);
    }
  } catch (e) { /* storage disabled: follow the system */ }
})();
