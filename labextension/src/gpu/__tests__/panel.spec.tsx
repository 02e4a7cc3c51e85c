import React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';

import { GpuFigures, IdleWarning, MigTable, ProcessTable } from '../panel';
import { GIB, makeGpu } from './fixtures';

/**
 * The markup of `element` in a detached node, to query like the page.
 */
function render(element: JSX.Element): HTMLElement {
  const node = document.createElement('div');
  node.innerHTML = renderToStaticMarkup(element);
  return node;
}

function cells(node: HTMLElement, selector: string): string[] {
  return Array.from(node.querySelectorAll(selector), cell => cell.textContent ?? '');
}

describe('GPU panel parts', () => {
  it('shows the current figures of a GPU', () => {
    const node = render(<GpuFigures gpu={makeGpu()} />);
    expect(cells(node, 'dt')).toEqual([
      'Utilisation',
      'Memory',
      'Temperature',
      'Power',
      'SM clock',
      'PCIe'
    ]);
    expect(cells(node, 'dd')).toEqual([
      '45% (memory 30%)',
      '12.3/80 GiB',
      '55 °C',
      '250 W of 400 W',
      '1410 MHz',
      'rx 1.0 · tx 2.0 MiB/s'
    ]);
  });

  it('names processes by notebook and hides who the others are', () => {
    const node = render(
      <ProcessTable
        processes={[
          {
            owner: 'kernel',
            pid: 4242,
            memory_used: 5 * GIB,
            kernel_id: 'k1',
            kernel_name: 'python3',
            notebook: 'fit.ipynb'
          },
          {
            owner: 'kernel',
            pid: 4343,
            memory_used: 1 * GIB,
            kernel_id: 'k2',
            kernel_name: 'python3',
            notebook: null
          },
          { owner: 'other', pid: null, memory_used: 30 * GIB }
        ]}
      />
    );
    expect(cells(node, 'tbody td')).toEqual([
      'fit.ipynb',
      '4242',
      '5 GiB',
      'kernel k2',
      '4343',
      '1 GiB',
      'other',
      '',
      '30 GiB'
    ]);
    expect(render(<ProcessTable processes={[]} />).textContent).toBe(
      'No process holds memory on this GPU.'
    );
  });

  it('lists MIG devices with "not reported for MIG"', () => {
    const node = render(
      <MigTable
        devices={[
          {
            index: 0,
            uuid: 'MIG-a',
            name: 'A100 MIG 3g.20gb',
            memory: { used: 2 * GIB, total: 20 * GIB },
            utilization: null,
            utilization_note: 'not reported for MIG'
          }
        ]}
      />
    );
    expect(cells(node, 'tbody td')).toEqual([
      'A100 MIG 3g.20gb',
      '2/20 GiB',
      'not reported for MIG'
    ]);
  });

  it('warns with the thresholds in effect', () => {
    const node = render(
      <IdleWarning
        settings={{ interval: 1, history_seconds: 900, idle_threshold: 5, idle_duration: 600 }}
      />
    );
    expect(node.textContent).toContain('used less than 5% of it for 10 min');
    expect(node.querySelector('[role=alert]')).not.toBeNull();
  });

  it('renders server strings as text, not HTML', () => {
    const node = render(
      <ProcessTable
        processes={[
          {
            owner: 'kernel',
            pid: 1,
            memory_used: 1,
            kernel_id: 'k',
            notebook: '<img src=x onerror=alert(1)>.ipynb'
          }
        ]}
      />
    );
    expect(node.querySelector('img')).toBeNull();
  });
});
