/*
 * The send editor's template parameters without JSON (templates/admin/campaigns/campaign/
 * change_form.html).
 *
 * For each send row, picking a template shows its body and, for each of its parameters (the
 * body's {{n}}, then the text header's and each URL button's, as the preview's `slots` name
 * them), a drop-down of the columns of the audiences chosen on the page plus "Fixed text…"
 * with a text box. The choices are written into the send's parameter_mapping field (the JSON list the server
 * stores and validates: a column name, or a fixed text in double quotes), which stays in the
 * form: without this script the marketer edits that JSON. The live preview asks the admin's
 * send-preview view, which renders through campaigns.rendering for the first eligible lead.
 * The template drop-down offers only the templates of the send's category.
 */
(function () {
  "use strict";

  const config = document.getElementById("send-preview-url");
  if (!config) return;
  const previewUrl = JSON.parse(config.textContent);
  const FIXED = "__fixed__";
  const STORED = "__stored__";
  const editors = [];

  function chosenAudiences() {
    const chosen = document.getElementById("id_audiences_to");
    if (chosen) return Array.from(chosen.options).map((o) => o.value);
    const plain = document.getElementById("id_audiences");
    return plain ? Array.from(plain.selectedOptions).map((o) => o.value) : [];
  }

  function chosenNumber() {
    const number = document.getElementById("id_whatsapp_number");
    return number ? number.value : "";
  }

  function isLiteral(entry) {
    return entry.length >= 2 && entry.startsWith('"') && entry.endsWith('"');
  }

  function element(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([name, value]) => node.setAttribute(name, value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* The body with each {{n}} marked, so the marketer sees where a parameter goes. */
  function markedBody(body) {
    const box = element("div", { class: "send-template-body" });
    body.split(/(\{\{\s*\d+\s*\}\})/).forEach((part) => {
      box.appendChild(/^\{\{/.test(part) ? element("mark", {}, part) : document.createTextNode(part));
    });
    return box;
  }

  class SendEditor {
    constructor(row) {
      this.row = row;
      this.template = row.querySelector("select[name$='-template']");
      this.category = row.querySelector("select[name$='-category']");
      this.mapping = row.querySelector("textarea[name$='-parameter_mapping']");
      this.box = element("div", { class: "send-template-editor" });
      (this.mapping.closest(".form-row") || this.mapping.parentElement).appendChild(this.box);
      this.mapping.hidden = true;
      this.placeholders = null;
      this.columns = null;
      this.asked = 0;
      this.timer = null;
      this.template.addEventListener("change", () => this.refresh(true));
      this.category.addEventListener("change", () => {
        this.offerCategory();
        this.refresh(true);
      });
      this.offerCategory();
      this.refresh(true);
    }

    /* Only the send's category's templates are offered; a template of another is dropped. */
    offerCategory() {
      Array.from(this.template.options).forEach((option) => {
        const other = option.dataset.category && option.dataset.category !== this.category.value;
        option.hidden = other;
        option.disabled = other;
      });
      if (this.template.selectedOptions[0]?.disabled) this.template.value = "";
    }

    stored() {
      try {
        const entries = JSON.parse(this.mapping.value || "[]");
        return Array.isArray(entries) ? entries : [];
      } catch (error) {
        return [];
      }
    }

    entries() {
      return Array.from(this.box.querySelectorAll(".send-parameter")).map((line) => {
        const choice = line.querySelector("select").value;
        if (choice === FIXED) return '"' + line.querySelector("input").value + '"';
        if (choice === STORED) return line.dataset.stored;
        return choice;
      });
    }

    changed() {
      this.mapping.value = JSON.stringify(this.entries());
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.refresh(false), 250);
    }

    async refresh(rebuild) {
      if (!this.template.value) {
        this.box.replaceChildren(element("p", { class: "help" }, "Pick a template to map its parameters."));
        this.placeholders = null;
        return;
      }
      const query = new URLSearchParams({
        template: this.template.value,
        category: this.category.value,
        mapping: this.mapping.value || "[]",
        number: chosenNumber(),
      });
      chosenAudiences().forEach((pk) => query.append("audiences", pk));
      const asked = ++this.asked;
      const response = await fetch(previewUrl + "?" + query, { credentials: "same-origin" });
      if (asked !== this.asked) return; // a later question is on its way
      const answer = await response.json();
      if (!response.ok) {
        this.box.replaceChildren(element("p", { class: "errornote" }, answer.error || "No preview."));
        return;
      }
      const shape = JSON.stringify([answer.slots, answer.columns, answer.template.body]);
      if (rebuild || shape !== this.shape) {
        this.shape = shape;
        this.build(answer);
      }
      this.showPreview(answer);
    }

    build(answer) {
      const stored = this.stored();
      const list = element("div", { class: "send-parameters" });
      answer.slots.forEach((slot, index) => {
        list.appendChild(this.parameterLine(slot, stored[index] ?? "", answer.columns));
      });
      this.preview = element("div", { class: "send-preview", "aria-live": "polite" });
      this.box.replaceChildren(markedBody(answer.template.body), list, this.preview);
      // The mapping now has one entry per parameter of this template.
      this.mapping.value = JSON.stringify(this.entries());
    }

    /* One parameter's drop-down; `slot` is its label: {{2}}, header {{1}}, button Shop {{1}}. */
    parameterLine(slot, entry, columns) {
      const line = element("div", { class: "send-parameter", "data-slot": slot });
      const label = element("label", {}, slot);
      const select = element("select", { "aria-label": `Parameter ${slot}`, class: "send-parameter-source" });
      select.appendChild(element("option", { value: "" }, "— choose —"));
      columns.forEach((column) => select.appendChild(element("option", { value: column }, column)));
      select.appendChild(element("option", { value: FIXED }, "Fixed text…"));
      const text = element("input", { type: "text", class: "send-parameter-text", "aria-label": `Fixed text for ${slot}` });
      if (columns.includes(entry) || entry === "") {
        select.value = entry;
      } else if (isLiteral(entry.trim())) {
        select.value = FIXED;
        text.value = entry.trim().slice(1, -1);
      } else {
        // An expression (or a column the audience no longer has) set elsewhere: kept as is.
        line.dataset.stored = entry;
        select.insertBefore(element("option", { value: STORED }, `As stored: ${entry}`), select.options[1]);
        select.value = STORED;
      }
      const showText = () => {
        text.hidden = select.value !== FIXED;
      };
      showText();
      select.addEventListener("change", () => {
        showText();
        this.changed();
      });
      text.addEventListener("input", () => this.changed());
      line.append(label, select, text);
      return line;
    }

    showPreview(answer) {
      const preview = this.preview;
      preview.replaceChildren();
      if (answer.lead) {
        const who = answer.lead.firstName ? `${answer.lead.firstName}, ${answer.lead.phoneE164}` : answer.lead.phoneE164;
        preview.appendChild(element("p", { class: "help" }, `Preview for the first eligible lead (${who}):`));
      }
      if (answer.text) preview.appendChild(element("blockquote", { class: "send-preview-text" }, answer.text));
      (answer.text ? answer.componentTexts : []).forEach((text) => {
        preview.appendChild(element("p", { class: "send-preview-component" }, text));
      });
      if (answer.problems.length) {
        const problems = element("ul", { class: "errorlist send-preview-problems" });
        answer.problems.forEach((problem) => problems.appendChild(element("li", {}, problem)));
        preview.appendChild(problems);
      }
    }
  }

  function setUp(row) {
    if (!row || row.id.endsWith("-empty") || row.sendEditor) return;
    if (!row.querySelector("select[name$='-template']") || !row.querySelector("textarea[name$='-parameter_mapping']")) return;
    row.sendEditor = new SendEditor(row);
    editors.push(row.sendEditor);
  }

  /* A new send follows the last one: its order is one more than the highest on the page. */
  function followLast(row) {
    const position = row.querySelector("input[name$='-position']");
    if (!position) return;
    const others = Array.from(document.querySelectorAll("#sends-group input[name$='-position']"))
      .filter((input) => input !== position && !input.name.includes("__prefix__"))
      .map((input) => parseInt(input.value, 10))
      .filter((n) => !Number.isNaN(n));
    position.value = others.length ? Math.max(...others) + 1 : 0;
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("#sends-group .inline-related").forEach(setUp);
    const refreshAll = () => editors.forEach((editor) => editor.refresh(false));
    document.getElementById("id_whatsapp_number")?.addEventListener("change", refreshAll);
    // The audiences' two-box widget moves options with links and double clicks.
    document.querySelector(".field-audiences")?.addEventListener("click", () => setTimeout(refreshAll));
    document.querySelector(".field-audiences")?.addEventListener("dblclick", () => setTimeout(refreshAll));
  });
  /* Django renumbers the ids of an added row (its zone box's datalist too), not the box's
   * `list` attribute naming the datalist: point it at the renumbered one. */
  function renumberZones(row) {
    row.querySelectorAll("input[list]").forEach((input) => {
      const zones = input.nextElementSibling;
      if (zones?.tagName === "DATALIST") input.setAttribute("list", zones.id);
    });
  }

  document.addEventListener("formset:added", (event) => {
    if (event.detail?.formsetName !== "sends") return;
    renumberZones(event.target);
    followLast(event.target);
    setUp(event.target);
  });
})();
