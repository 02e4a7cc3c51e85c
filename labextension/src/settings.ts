/**
 * How the ScienceLab plugins read their settings (`schema/<plugin>.json`).
 */
import { ISettingRegistry } from '@jupyterlab/settingregistry';

/**
 * Load the settings of `pluginId` and call `apply` with them now and after every change the user
 * makes. Without a registry nothing happens; when they cannot be loaded (or the first `apply`
 * throws) the error is logged and the plugin keeps its defaults. Never rejects.
 */
export async function followSettings(
  settingRegistry: ISettingRegistry | null,
  pluginId: string,
  apply: (settings: ISettingRegistry.ISettings) => void
): Promise<void> {
  if (!settingRegistry) {
    return;
  }
  try {
    const settings = await settingRegistry.load(pluginId);
    apply(settings);
    settings.changed.connect(apply);
  } catch (error) {
    console.error(
      `ScienceLab: could not load the settings of ${pluginId}; using the defaults.`,
      error
    );
  }
}
