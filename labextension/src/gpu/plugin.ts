import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { followSettings } from '../settings';
import { CommandIDs, ISciencelabSidebar } from '../tokens';
import { GpuMonitorModel } from './model';
import { GpuSection } from './panel';
import { GpuStatusItem } from './statusbar';
import { IGpuServerSettings } from './types';

const PLUGIN_ID = '@sciencelab/labextension:gpu';

/**
 * Rank of the GPU section in the ScienceLab sidebar (the profile has 0, Dask clusters 100).
 */
const SECTION_RANK = 200;

/**
 * Rank of the status-bar item on the left of the status bar, right of the session countdown (90).
 */
const STATUS_RANK = 100;

/**
 * The user's settings (schema/gpu.json) as the sampler's: only those the user set, null meaning
 * "keep the server's".
 */
export function serverSettingsFrom(
  settings: ISettingRegistry.ISettings
): Partial<IGpuServerSettings> {
  const interval = settings.get('interval').composite;
  const threshold = settings.get('idleThreshold').composite;
  const minutes = settings.get('idleMinutes').composite;
  const wanted: Partial<IGpuServerSettings> = {};
  if (typeof interval === 'number') {
    wanted.interval = interval;
  }
  if (typeof threshold === 'number') {
    wanted.idle_threshold = threshold;
  }
  if (typeof minutes === 'number') {
    wanted.idle_duration = minutes * 60;
  }
  return wanted;
}

/**
 * The GPU monitor: a section of the ScienceLab sidebar and a status-bar item, fed by one
 * WebSocket per tab. Does nothing on servers whose GPU monitor is switched off.
 */
export const gpuPlugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'GPU utilisation, memory per notebook and idle warnings in the ScienceLab sidebar and the status bar.',
  autoStart: true,
  requires: [ISciencelabSidebar],
  optional: [IStatusBar, ISettingRegistry],
  activate: async (
    app: JupyterFrontEnd,
    sidebar: ISciencelabSidebar,
    statusBar: IStatusBar | null,
    settingRegistry: ISettingRegistry | null
  ): Promise<void> => {
    const info = await sidebar.info.catch(() => null);
    if (!info?.features.gpu_monitor) {
      return;
    }
    const model = new GpuMonitorModel();
    const section = new GpuSection(model);
    sidebar.addSection(section, { rank: SECTION_RANK });

    const item = new GpuStatusItem(model, () => void app.commands.execute(CommandIDs.openPanel));
    if (statusBar) {
      item.addTo(statusBar, `${PLUGIN_ID}-status`, STATUS_RANK);
    }

    await model.start();
    await followSettings(settingRegistry, PLUGIN_ID, settings => {
      section.windowSeconds = (settings.get('historyMinutes').composite as number) * 60;
      item.options = {
        show: settings.get('showStatusBar').composite as boolean,
        showWithoutGpu: settings.get('showWithoutGpu').composite as boolean
      };
      const wanted = serverSettingsFrom(settings);
      if (Object.keys(wanted).length > 0) {
        model.configure(wanted).catch((error: unknown) => {
          console.error('ScienceLab: the server refused the GPU monitor settings.', error);
        });
      }
    });
  }
};
