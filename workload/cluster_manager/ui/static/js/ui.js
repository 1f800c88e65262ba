// Progressive enhancements only: every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Copy buttons: copy the text of the element named by data-copy-target.
  for (const button of document.querySelectorAll(".js-copy")) {
    button.addEventListener("click", async () => {
      const target = document.getElementById(button.dataset.copyTarget);
      if (!target) {
        return;
      }
      const original = button.textContent;
      try {
        await navigator.clipboard.writeText(target.textContent.trim());
        button.textContent = "Copied";
      } catch (error) {
        // Clipboard access refused: select the text so that the user can copy it.
        const range = document.createRange();
        range.selectNodeContents(target);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Press Ctrl+C to copy";
      }
      setTimeout(() => {
        button.textContent = original;
      }, 3000);
    });
  }

  // An open dialog takes the focus, and Escape closes it like its Close link.
  const dialog = document.querySelector(".p-modal [role=dialog]");
  if (dialog) {
    const focusable = dialog.querySelector("button, [href]");
    if (focusable) {
      focusable.focus();
    }
    document.addEventListener("keydown", (event) => {
      const close = dialog.querySelector(".p-modal__close");
      if (event.key === "Escape" && close) {
        window.location.assign(close.href);
      }
    });
  }
});
