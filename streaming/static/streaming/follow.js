// The script box follows new words while the reader is at its end; once they scroll up it holds still, and
// scrolling back down (or "Jump to the latest words") follows again. No state to keep in step: where the box
// is scrolled decides, at each word.

const AT_END_SLACK_PX = 24; // about a line: a nudge of a pixel or two does not stop the following

export class ScriptFollower {
  /**
   * @param {HTMLElement} box    the scrolling container of the script
   * @param {HTMLButtonElement} jump  shown while new words arrive out of sight; takes the reader to them
   */
  constructor(box, jump) {
    this.box = box;
    this.jump = jump;
    box.addEventListener("scroll", () => this.atEnd() && this.#offerJump(false), { passive: true });
    jump.addEventListener("click", () => this.toEnd());
  }

  /** Whether the end of the script is in view (a box with nothing to scroll always is). */
  atEnd() {
    const { scrollHeight, scrollTop, clientHeight } = this.box;
    return scrollHeight - scrollTop - clientHeight <= AT_END_SLACK_PX;
  }

  /** Run `add` (which appends to the box), keeping the end in view if the reader was there. */
  append(add) {
    const following = this.atEnd();
    add();
    if (following) this.box.scrollTop = this.box.scrollHeight;
    else this.#offerJump(true);
  }

  toEnd() {
    this.box.scrollTop = this.box.scrollHeight;
    this.#offerJump(false);
  }

  toStart() {
    this.box.scrollTop = 0;
    this.#offerJump(false);
  }

  #offerJump(visible) {
    this.jump.hidden = !visible;
  }
}
