/* mkdocs-sanet: a larger view of a figure on click, in a <dialog>. Runs again after each
 * instant-navigation page change, so it listens once, on the document. */
(function () {
  "use strict";
  if (window.sanetArticle) return;
  window.sanetArticle = true;
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a.sanet-figure__zoom");
    if (!link || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    const dialog = document.createElement("dialog");
    dialog.className = "sanet-lightbox";
    const image = document.createElement("img");
    image.src = link.href;
    image.alt = (link.querySelector("img") || {}).alt || "";
    dialog.appendChild(image);
    dialog.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => dialog.remove());
    document.body.appendChild(dialog);
    dialog.showModal();
  });
})();
