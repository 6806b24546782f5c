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

// Datasette's filter and sort controls carry no labels (a screen reader announces "combo
// box"); name each one for what it sets. Rows of filters already applied are numbered.
document.addEventListener("DOMContentLoaded", () => {
  const names = [
    [/^_filter_column(_(\d+))?$/, "column"],
    [/^_filter_op(_(\d+))?$/, "operator"],
    [/^_filter_value(_(\d+))?$/, "value"],
  ];
  document.querySelectorAll("form.filters select, form.filters input").forEach((control) => {
    // A hidden input (Datasette keeps ?_size=, ?_facet= ... in the form) has no labels: null.
    if (control.type === "hidden" || control.labels.length || control.hasAttribute("aria-label")) return;
    if (control.name === "_sort") {
      control.setAttribute("aria-label", "Sort by column");
      return;
    }
    for (const [pattern, part] of names) {
      const match = control.name.match(pattern);
      if (match) {
        const filter = match[2] ? `Filter ${match[2]}` : "New filter";
        control.setAttribute("aria-label", `${filter}: ${part}`);
      }
    }
  });
});

// The SQL editor types into CodeMirror's own hidden textarea, which has no name either.
// Datasette starts CodeMirror from window.onload, after this listener: hence the timeout.
window.addEventListener("load", () => setTimeout(() => {
  document.querySelectorAll(".CodeMirror textarea").forEach((input) => {
    if (!input.hasAttribute("aria-label")) input.setAttribute("aria-label", "SQL query");
  });
}, 0));

// Datasette's column menus (the cog in each table header, static/table.js) open on a mouse
// click only: an SVG takes no focus. Make each cog a button for the keyboard: Tab reaches
// it, and Enter or Space opens the menu with its first choice focused (Tab from the cog
// of a menu opened by mouse goes into it too). The menu is the body's last element; the
// keys below keep it, for the keyboard, right after its cog: Escape closes it and goes back
// to the cog, Shift+Tab before its first choice goes back to the cog, and Tab past its last
// choice goes on to what follows the cog; the arrows, Home and End move along its choices.
// A menu table.js hides (its table scrolled) gives the focus back to its cog too.
document.addEventListener("DOMContentLoaded", () => {
  const menu = document.querySelector("body > .dropdown-menu");
  if (!menu) return;
  let opener = null; // the cog whose menu is open
  const isOpen = () => menu.style.display === "block";
  const choices = () => [...menu.querySelectorAll("a")].filter((a) => a.offsetParent !== null);
  const focusFirstChoice = () => choices()[0]?.focus();
  const close = (backToCog) => {
    menu.style.display = "none";
    menu.classList.remove("anim-scale-in");
    const cog = opener;
    opener = null;
    if (cog) cog.setAttribute("aria-expanded", "false");
    if (backToCog && cog) cog.focus();
  };
  // A menu of links, as a screen reader should announce it; arrows move along it.
  menu.querySelector("ul")?.setAttribute("role", "menu");
  menu.querySelectorAll("li").forEach((item) => item.setAttribute("role", "none"));
  menu.querySelectorAll("li a").forEach((link) => link.setAttribute("role", "menuitem"));
  document.querySelectorAll("th svg.dropdown-menu-icon").forEach((icon) => {
    icon.setAttribute("tabindex", "0");
    icon.setAttribute("role", "button");
    icon.setAttribute("aria-haspopup", "menu");
    icon.setAttribute("aria-expanded", "false");
    icon.setAttribute("aria-label", `Options for column ${icon.closest("th").dataset.column}`);
    icon.addEventListener("click", () => { // a mouse's open too
      if (opener && opener !== icon) opener.setAttribute("aria-expanded", "false");
      opener = icon;
      icon.setAttribute("aria-expanded", "true");
    });
    icon.addEventListener("keydown", (event) => {
      if (event.key === "Tab" && !event.shiftKey && isOpen() && opener === icon) {
        event.preventDefault();
        focusFirstChoice();
        return;
      }
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault();
      icon.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true }));
      focusFirstChoice();
    });
  });
  document.addEventListener("keydown", (event) => {
    if (!isOpen()) return;
    if (event.key === "Escape") {
      close(true);
      return;
    }
    if (!menu.contains(document.activeElement)) return;
    const items = choices();
    const at = items.indexOf(document.activeElement);
    const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 };
    if (event.key in moves && items.length) {
      event.preventDefault(); // the page does not scroll
      items[(moves[event.key] + items.length) % items.length].focus();
      return;
    }
    if (event.key !== "Tab") return;
    if (event.shiftKey && document.activeElement === items[0]) {
      event.preventDefault();
      close(true);
    } else if (!event.shiftKey && document.activeElement === items[items.length - 1]) {
      close(true); // the Tab itself then moves on from the cog
    }
  });
  menu.tabIndex = -1; // a click on the menu's text keeps the focus in the menu
  new MutationObserver(() => {
    // table.js hides the menu when its table scrolls: give the focus back to the cog
    if (!isOpen() && opener && menu.contains(document.activeElement)) close(true);
    else if (!isOpen() && opener) close(false);
  }).observe(menu, { attributes: true, attributeFilter: ["style"] });
  menu.addEventListener("focusout", (event) => {
    if (isOpen() && !menu.contains(event.relatedTarget)) close(false);
  });
});

// The map's markers (datasette-cluster-map) are images that Tab reaches, with an empty alt:
// a screen reader announced nothing. Each is named by its popup's text ("Sakana AI 1 paper ·
// Tokyo, Japan"). Leaflet loads after this script; the map's panes appear before its rows
// are fetched, so Leaflet's bindPopup is wrapped then, before any marker is made.
document.addEventListener("DOMContentLoaded", () => {
  if (!window.datasette?.cluster_map) return; // a page without a map
  const nameMarkersByTheirPopups = () => {
    if (!window.L || !L.Marker || L.Marker.prototype.namedByPopup) return Boolean(window.L);
    const bindPopup = L.Marker.prototype.bindPopup;
    L.Marker.prototype.bindPopup = function (content, options) {
      if (typeof content === "string" && !this.options.alt) {
        // Its texts one after the other: the title and description are paragraphs apart.
        const body = new DOMParser().parseFromString(content, "text/html").body;
        const texts = document.createTreeWalker(body, NodeFilter.SHOW_TEXT);
        const words = [];
        while (texts.nextNode()) words.push(texts.currentNode.textContent);
        this.options.alt = words.join(" ").replace(/\s+/g, " ").trim();
      }
      return bindPopup.call(this, content, options);
    };
    L.Marker.prototype.namedByPopup = true;
    return true;
  };
  const observer = new MutationObserver(() => {
    if (nameMarkersByTheirPopups()) observer.disconnect();
  });
  observer.observe(document.body, { childList: true, subtree: true });
});
