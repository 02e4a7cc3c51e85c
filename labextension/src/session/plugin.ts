import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { followSettings } from '../settings';
import { CommandIDs, ISciencelabSidebar } from '../tokens';
import { extendedMessage } from './format';
import { SessionLifetimeModel, warningsFrom } from './model';
import { SessionSection } from './panel';
import { SessionStatusItem } from './statusbar';

const PLUGIN_ID = '@sciencelab/labextension:session';

/**
 * Rank of the Session section in the ScienceLab sidebar: right below the profile (0), above the
 * Dask clusters (100).
 */
const SECTION_RANK = 50;

/**
 * Rank of the status-bar item on the left of the status bar, left of the GPU item (100).
 */
const STATUS_RANK = 90;

/**
 * Milliseconds the confirmation of an extension stays on screen.
 */
const CONFIRMATION_MS = 5000;

/**
 * Session lifetimes: the time left before the hub stops this server, in the status bar and a
 * section of the ScienceLab sidebar, warnings before the deadline, and the Extend command. Shows
 * nothing on servers the hub sets no terms for.
 */
export const sessionPlugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Session lifetimes: time left before the hub stops the server, warnings, and Extend.',
  autoStart: true,
  requires: [ISciencelabSidebar],
  optional: [IStatusBar, ISettingRegistry, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    sidebar: ISciencelabSidebar,
    statusBar: IStatusBar | null,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null
  ): void => {
    const model = new SessionLifetimeModel();
    addExtendCommand(app, model);
    palette?.addItem({ command: CommandIDs.extendSession, category: 'ScienceLab' });
    addWarnings(app, model);
    // Not awaited: JupyterLab need not wait for the hub's answer to finish starting.
    void setUp(app, model, sidebar, statusBar, settingRegistry);
  }
};

/**
 * Apply the settings, read the terms, then add the section and the status-bar item once the hub
 * sets terms for this server; an error reading them shows in the section.
 */
async function setUp(
  app: JupyterFrontEnd,
  model: SessionLifetimeModel,
  sidebar: ISciencelabSidebar,
  statusBar: IStatusBar | null,
  settingRegistry: ISettingRegistry | null
): Promise<void> {
  await followSettings(settingRegistry, PLUGIN_ID, settings => {
    model.warnings = warningsFrom(settings.get('warnings').composite);
  });
  await model.start();
  if (!model.watching) {
    model.dispose();
    return;
  }
  if (model.managed === false) {
    // The hub has no terms yet (the server is starting): show them once it has.
    const showWhenManaged = (): void => {
      if (model.managed === true) {
        model.changed.disconnect(showWhenManaged);
        addViews(app, model, sidebar, statusBar);
      }
    };
    model.changed.connect(showWhenManaged);
    return;
  }
  addViews(app, model, sidebar, statusBar);
}

/**
 * The Session section and the countdown in the status bar.
 */
function addViews(
  app: JupyterFrontEnd,
  model: SessionLifetimeModel,
  sidebar: ISciencelabSidebar,
  statusBar: IStatusBar | null
): void {
  const section = new SessionSection(model);
  sidebar.addSection(section, { rank: SECTION_RANK });

  const item = new SessionStatusItem(model, () => {
    void app.commands.execute(CommandIDs.openPanel);
    sidebar.expandSection(section);
  });
  if (statusBar) {
    item.addTo(statusBar, `${PLUGIN_ID}-status`, STATUS_RANK);
  }
}

/**
 * `sciencelab:extend-session`: extend, then confirm with the new deadline or say why not.
 */
function addExtendCommand(app: JupyterFrontEnd, model: SessionLifetimeModel): void {
  const { commands } = app;
  commands.addCommand(CommandIDs.extendSession, {
    label: 'Extend Session',
    caption: () =>
      model.extendState()?.reason ?? 'Move the time the hub stops this server by one step',
    isEnabled: () => model.extendState()?.possible === true && !model.extending,
    execute: async () => {
      try {
        const terms = await model.extend();
        Notification.success(extendedMessage(terms, model.now()), {
          autoClose: CONFIRMATION_MS
        });
      } catch (error) {
        Notification.error(error instanceof Error ? error.message : String(error), {
          autoClose: false
        });
      }
    }
  });
  // The palette asks `isEnabled` when it renders; tell it when the answer changes, not every tick.
  let enabled = commands.isEnabled(CommandIDs.extendSession);
  model.changed.connect(() => {
    const now = commands.isEnabled(CommandIDs.extendSession);
    if (now !== enabled) {
      enabled = now;
      commands.notifyCommandChanged(CommandIDs.extendSession);
    }
  });
}

/**
 * Warnings before the deadline, with an Extend action where the session can be extended. They
 * go once the deadline moves (an extension from the section or another tab), being out of date.
 */
function addWarnings(app: JupyterFrontEnd, model: SessionLifetimeModel): void {
  let shown: { deadline: string | null; ids: string[] } = { deadline: null, ids: [] };
  model.warningDue.connect((_, warning) => {
    const deadline = model.terms?.deadline ?? null;
    const id = Notification.warning(warning.message, {
      autoClose: false,
      actions: warning.canExtend
        ? [
            {
              label: 'Extend',
              caption: 'Move the time the hub stops this server by one step',
              displayType: 'accent',
              callback: () => {
                void app.commands.execute(CommandIDs.extendSession);
              }
            }
          ]
        : []
    });
    shown = { deadline, ids: deadline === shown.deadline ? [...shown.ids, id] : [id] };
  });
  model.changed.connect(() => {
    if (shown.ids.length > 0 && model.terms?.deadline !== shown.deadline) {
      shown.ids.forEach(id => Notification.dismiss(id));
      shown = { deadline: null, ids: [] };
    }
  });
}
