import { Collapser, SidePanel } from '@jupyterlab/ui-components';
import { Panel, Widget } from '@lumino/widgets';

import { requestAPI } from '../request';
import { ISciencelabInfo, ISciencelabSidebar } from '../tokens';
import { ProfileSection } from './profile';

/**
 * Rank of a section added without one; between the built-in capabilities and the end.
 */
const DEFAULT_SECTION_RANK = 500;

/**
 * The ScienceLab panel of the left sidebar: a header with the version, then one collapsible
 * section per capability, the spawn profile first.
 *
 * The sections are JupyterLab `Collapser`s in one scrolling column, each as tall as its content:
 * an `AccordionPanel` (the `SidePanel` default) would give each an equal share of the height, cut
 * off the profile and squeeze a cluster card into a small scrolling box.
 *
 * Server values are set with `textContent` only, so they are never parsed as HTML.
 */
export class SciencelabSidebar extends SidePanel implements ISciencelabSidebar {
  /**
   * @param options.fetchInfo - Where the panel gets its data; `GET sciencelab/api/info` by
   *   default. Tests pass a stub.
   */
  constructor(options: SciencelabSidebar.IOptions = {}) {
    super({ content: new Panel() });
    this.id = 'sciencelab-panel';
    this.title.caption = 'ScienceLab';
    this.addClass('sciencelab-Panel');
    this.content.addClass('sciencelab-Sections');

    this._heading = document.createElement('h2');
    this._heading.className = 'sciencelab-version';
    this._heading.textContent = 'ScienceLab';
    this.header.node.append(this._heading);

    const fetchInfo = options.fetchInfo ?? (() => requestAPI<ISciencelabInfo>('info'));
    this.info = fetchInfo();
    const profile = new ProfileSection();
    // The profile and, under it, the actions on this server (Share…) form the first section.
    const profileFrame = new Panel();
    profileFrame.title.label = profile.title.label;
    profileFrame.addWidget(profile);
    this._profileActions.addClass('sciencelab-ProfileActions');
    this._profileActions.hide();
    profileFrame.addWidget(this._profileActions);
    this.addSection(profileFrame, { rank: 0 });
    this.ready = this.info.then(
      info => {
        this._heading.textContent = `ScienceLab ${info.version}`;
        profile.showProfile(info.profile, info.batch_job ?? null);
      },
      (error: unknown) => {
        profile.showError(error instanceof Error ? error.message : String(error));
      }
    );
  }

  readonly info: Promise<ISciencelabInfo>;

  /**
   * Resolves once the server information is shown (or its failure); never rejects.
   */
  readonly ready: Promise<void>;

  /**
   * The section widgets, top to bottom (without their collapsible frames).
   */
  get sections(): Widget[] {
    return this.widgets.map(frame => (frame as Collapser).widget);
  }

  addSection(widget: Widget, options: ISciencelabSidebar.ISectionOptions = {}): void {
    const rank = options.rank ?? DEFAULT_SECTION_RANK;
    // Insert after every section of lower or equal rank, so equal ranks keep their order.
    let index = this._ranks.findIndex(other => other > rank);
    if (index === -1) {
      index = this._ranks.length;
    }
    this._ranks.splice(index, 0, rank);
    widget.addClass('sciencelab-Section');
    const frame = new Collapser({ widget, collapsed: false });
    frame.addClass('sciencelab-SectionFrame');
    makeHeaderAccessible(frame);
    this.insertWidget(index, frame);
  }

  expandSection(widget: Widget): void {
    const frame = this._frameOf(widget);
    if (frame) {
      frame.collapsed = false;
      frame.node.scrollIntoView?.({ block: 'nearest' });
    }
  }

  setSectionVisible(widget: Widget, visible: boolean): void {
    this._frameOf(widget)?.setHidden(!visible);
  }

  addProfileAction(widget: Widget): void {
    this._profileActions.addWidget(widget);
    this._profileActions.show();
  }

  private _frameOf(widget: Widget): Collapser | undefined {
    return this.widgets.find(
      (candidate): candidate is Collapser => (candidate as Collapser).widget === widget
    );
  }

  private readonly _heading: HTMLHeadingElement;
  private readonly _profileActions = new Panel();
  private readonly _ranks: number[] = [];
}

/**
 * A `Collapser` header takes clicks only: make it a button for the keyboard and screen readers,
 * as an `AccordionPanel` title is.
 */
function makeHeaderAccessible(frame: Collapser): void {
  const header = frame.node.querySelector('.jp-Collapse-header') as HTMLElement;
  header.setAttribute('role', 'button');
  header.tabIndex = 0;
  const update = (): void => header.setAttribute('aria-expanded', String(!frame.collapsed));
  update();
  frame.collapseChanged.connect(update);
  header.addEventListener('keydown', event => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      frame.toggle();
    }
  });
}

/**
 * The namespace for `SciencelabSidebar` statics.
 */
export namespace SciencelabSidebar {
  /**
   * Options for the panel.
   */
  export interface IOptions {
    fetchInfo?: () => Promise<ISciencelabInfo>;
  }
}
