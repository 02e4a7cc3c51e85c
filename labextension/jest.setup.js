// jsdom has no DragEvent, and @lumino/dragdrop (imported by @lumino/widgets) subclasses it at
// import time. Node-environment specs have no MouseEvent and need neither.
if (typeof globalThis.DragEvent === 'undefined' && typeof globalThis.MouseEvent !== 'undefined') {
  globalThis.DragEvent = class DragEvent extends globalThis.MouseEvent {
    constructor(type, init = {}) {
      super(type, init);
      this.dataTransfer = init.dataTransfer ?? null;
    }
  };
}
