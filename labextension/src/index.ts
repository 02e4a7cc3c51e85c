import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { daskPlugin } from './dask/plugin';
import { gpuPlugin } from './gpu/plugin';
import { sciencelabIcon } from './icons';
import { sessionPlugin } from './session/plugin';
import { sharingPlugin } from './sharing/plugin';
import { SciencelabSidebar } from './sidebar/sidebar';
import { CommandIDs, ISciencelabSidebar } from './tokens';

const PLUGIN_ID = '@sciencelab/labextension:plugin';

/**
 * Sidebar rank used when the settings cannot be read; the schema default.
 */
const DEFAULT_RANK = 900;

/**
 * Adds the ScienceLab panel to the left sidebar and the command that opens it; provides the
 * panel to the capability plugins, which add their sections to it.
 */
const plugin: JupyterFrontEndPlugin<ISciencelabSidebar> = {
  id: PLUGIN_ID,
  description:
    'ScienceLab side panel: spawn profile, session lifetime, Dask clusters, GPU utilisation and session sharing.',
  autoStart: true,
  provides: ISciencelabSidebar,
  requires: [ILabShell],
  optional: [ILayoutRestorer, ICommandPalette, ISettingRegistry],
  activate: async (
    app: JupyterFrontEnd,
    labShell: ILabShell,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null
  ): Promise<ISciencelabSidebar> => {
    const panel = new SciencelabSidebar();
    panel.title.icon = sciencelabIcon;

    labShell.add(panel, 'left', { rank: await loadRank(settingRegistry) });
    restorer?.add(panel, panel.id);

    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Open ScienceLab panel',
      caption: 'Show the ScienceLab panel in the left sidebar',
      icon: sciencelabIcon,
      execute: () => {
        labShell.activateById(panel.id);
      }
    });
    palette?.addItem({ command: CommandIDs.openPanel, category: 'ScienceLab' });
    return panel;
  }
};

/**
 * The sidebar rank from the user's settings, or the default when there is no registry.
 */
async function loadRank(settingRegistry: ISettingRegistry | null): Promise<number> {
  if (!settingRegistry) {
    return DEFAULT_RANK;
  }
  try {
    const settings = await settingRegistry.load(PLUGIN_ID);
    const rank = settings.get('rank').composite;
    return typeof rank === 'number' ? rank : DEFAULT_RANK;
  } catch (error) {
    console.error(
      `ScienceLab: could not load the settings of ${PLUGIN_ID}; using rank ${DEFAULT_RANK}.`,
      error
    );
    return DEFAULT_RANK;
  }
}

export default [plugin, daskPlugin, gpuPlugin, sessionPlugin, sharingPlugin];
