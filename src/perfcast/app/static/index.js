// Index page: the version and health of the server behind the dashboard.
"use strict";

document.addEventListener("DOMContentLoaded", () => perfcast.guard(async () => {
  const system = await perfcast.api("/api/system");
  document.getElementById("version").textContent =
    `perfcast ${system.perfcast}, Python ${system.python}, store ${system.store.path}`;
}));
