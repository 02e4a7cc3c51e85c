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

// jsdom has no matchMedia; @jupyter/web-components (imported by @jupyterlab/ui-components) asks
// it for the colour scheme at import time.
if (typeof window !== 'undefined' && typeof window.matchMedia === 'undefined') {
  window.matchMedia = query => ({
    matches: false,
    media: query,
    onchange: null,
    addListener: () => undefined,
    removeListener: () => undefined,
    addEventListener: () => undefined,
    removeEventListener: () => undefined,
    dispatchEvent: () => false
  });
}

// jsdom has no TextEncoder; react-dom/server (the GPU panel specs render markup with it) needs one.
if (typeof globalThis.TextEncoder === 'undefined') {
  const { TextDecoder, TextEncoder } = require('util');
  Object.assign(globalThis, { TextDecoder, TextEncoder });
}

// jsdom has no requestIdleCallback; ReactWidget resolves its render promise with it.
if (typeof globalThis.requestIdleCallback === 'undefined') {
  globalThis.requestIdleCallback = callback => setTimeout(() => callback({ didTimeout: false, timeRemaining: () => 0 }), 0);
}
