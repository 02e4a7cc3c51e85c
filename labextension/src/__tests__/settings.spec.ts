import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { Signal } from '@lumino/signaling';

import { followSettings } from '../settings';

const PLUGIN_ID = '@sciencelab/labextension:test';

/**
 * The part of a plugin's settings the specs use: a value and its `changed` signal.
 */
class StubSettings {
  get changed(): Signal<this, void> {
    return this._changed;
  }

  change(value: number): void {
    this.value = value;
    this._changed.emit();
  }

  value = 1;
  private readonly _changed = new Signal<this, void>(this);
}

/**
 * A registry that answers `load` with `settings`, or refuses.
 */
function registry(settings: StubSettings | Error): ISettingRegistry {
  const load = jest.fn(() =>
    settings instanceof Error ? Promise.reject(settings) : Promise.resolve(settings)
  );
  return { load } as unknown as ISettingRegistry;
}

afterEach(() => {
  jest.restoreAllMocks();
});

describe('followSettings', () => {
  it('applies the settings now and after every change', async () => {
    const settings = new StubSettings();
    const seen: number[] = [];
    const settingRegistry = registry(settings);

    await followSettings(settingRegistry, PLUGIN_ID, loaded => {
      expect(loaded).toBe(settings);
      seen.push(settings.value);
    });
    settings.change(2);
    settings.change(3);

    expect(settingRegistry.load).toHaveBeenCalledWith(PLUGIN_ID);
    expect(seen).toEqual([1, 2, 3]);
  });

  it('does nothing without a registry', async () => {
    const apply = jest.fn();
    await followSettings(null, PLUGIN_ID, apply);
    expect(apply).not.toHaveBeenCalled();
  });

  it('logs settings it cannot load and keeps the defaults', async () => {
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const apply = jest.fn();

    await followSettings(registry(new Error('no schema')), PLUGIN_ID, apply);

    expect(apply).not.toHaveBeenCalled();
    expect(error).toHaveBeenCalledWith(
      `ScienceLab: could not load the settings of ${PLUGIN_ID}; using the defaults.`,
      new Error('no schema')
    );
  });
});
