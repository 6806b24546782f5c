// Fold the long list of column descriptions on table pages behind a "What the columns mean"
// toggle, so the rows come first. Without JavaScript the list simply stays open.
document.addEventListener("DOMContentLoaded", () => {
  const list = document.querySelector("dl.column-descriptions");
  if (!list) return;
  const details = document.createElement("details");
  details.className = "column-descriptions-toggle";
  const summary = document.createElement("summary");
  summary.textContent = "What the columns mean";
  list.replaceWith(details);
  details.append(summary, list);
});
