// Saved scripts: every script of the user, newest first, a page at a time (GET /api/scripts/?page=N, 20 a page).
// Running, failed and cancelled ones say so; while one is running the list asks again now and then, so a script
// that ends elsewhere (another tab, a process that died) does not show as running for long.

const RUNNING_REFRESH_MS = 5_000;
const STATUS_LABELS = { running: "Writing", completed: "Done", failed: "Failed", cancelled: "Cancelled" };

export class SavedScripts {
  /**
   * @param {object} options
   * @param {(path: string) => Promise<any>} options.api   GET as the signed-in user
   * @param {Record<string, HTMLElement>} options.el       list, empty, count, more
   * @param {(platform: string) => string} options.platformLabel
   * @param {(script: object) => string} options.reasonOf   one sentence: why a failed script failed
   * @param {(id: number) => void} options.onOpen
   */
  constructor({ api, el, platformLabel, reasonOf, onOpen }) {
    Object.assign(this, { api, el, platformLabel, reasonOf, onOpen });
    this.scripts = []; // newest first, each id once
    this.pages = 0; // how many pages are on screen
    this.total = 0;
    this.hasMore = false;
    this.queue = Promise.resolve(); // one request at a time, in the order asked
    this.refreshTimer = null;
    el.more.addEventListener("click", () => this.loadMore());
  }

  /** Ask again for the pages on screen (at least the first). */
  reload() {
    return this.#enqueue(async () => {
      const pages = [];
      for (let page = 1; page <= Math.max(1, this.pages); page++) {
        const body = await this.api(`/api/scripts/?page=${page}`);
        pages.push(body);
        if (!body.next) break;
      }
      this.scripts = [];
      this.pages = 0;
      for (const body of pages) this.#take(body);
      this.#render();
    });
  }

  /** The next page, appended; keyboard focus goes to its first script. */
  loadMore() {
    return this.#enqueue(async () => {
      const before = this.scripts.length;
      this.#take(await this.api(`/api/scripts/?page=${this.pages + 1}`));
      this.#render();
      this.el.list.children[before]?.querySelector("button")?.focus();
    });
  }

  stop() {
    clearTimeout(this.refreshTimer);
    this.queue = Promise.resolve();
  }

  #enqueue(work) {
    this.queue = this.queue.then(work).catch(() => {}); // unreachable now: the next reload or click asks again
    return this.queue;
  }

  #take(body) {
    const known = new Set(this.scripts.map((script) => script.id));
    // Scripts written since the first page was read push older ones onto later pages: each is listed once.
    this.scripts.push(...body.results.filter((script) => !known.has(script.id)));
    this.pages += 1;
    this.total = body.count;
    this.hasMore = Boolean(body.next);
  }

  #render() {
    const focused = document.activeElement?.closest?.("[data-script-id]")?.dataset.scriptId;
    this.el.list.replaceChildren(...this.scripts.map((script) => this.#item(script)));
    if (focused) this.el.list.querySelector(`[data-script-id="${focused}"]`)?.focus();
    this.el.empty.hidden = this.scripts.length > 0;
    this.el.count.hidden = !this.hasMore;
    this.el.count.textContent = `${this.scripts.length} of ${this.total} shown`;
    this.el.more.hidden = !this.hasMore;
    clearTimeout(this.refreshTimer);
    if (this.scripts.some((script) => script.status === "running")) {
      this.refreshTimer = setTimeout(() => this.reload(), RUNNING_REFRESH_MS);
    }
  }

  #item(script) {
    const item = document.createElement("li");
    const button = node("button", "saved-item");
    button.type = "button";
    button.dataset.scriptId = script.id;
    button.dataset.status = script.status;
    const when = new Date(script.created_at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    const size = script.status === "running" ? "writing now" : `${script.words} words`;
    button.append(
      node("span", "saved-title", script.topic),
      node("span", "saved-meta", `${this.platformLabel(script.platform)} · ${size} · ${when}`),
    );
    if (script.status !== "completed") {
      const state = node("span", "saved-state");
      const pill = node("span", "pill pill-small", STATUS_LABELS[script.status] ?? script.status);
      pill.dataset.status = script.status;
      state.append(pill);
      if (script.status === "failed") state.append(node("span", "saved-reason", this.reasonOf(script)));
      button.append(state);
    }
    button.addEventListener("click", () => this.onOpen(script.id));
    item.append(button);
    return item;
  }
}

function node(tag, className, text = "") {
  return Object.assign(document.createElement(tag), { className, textContent: text });
}
