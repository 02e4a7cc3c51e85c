import React, { useEffect, useRef } from 'react';
import uPlot, { AlignedData } from 'uplot';

const HEIGHT = 110;

/**
 * A JupyterLab theme colour for the canvas, which cannot read CSS variables itself.
 */
function themeColour(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

function makeOptions(width: number): uPlot.Options {
  const text = themeColour('--jp-ui-font-color2', '#616161');
  const grid = themeColour('--jp-border-color2', '#e0e0e0');
  const axis = {
    stroke: text,
    grid: { stroke: grid, width: 1 },
    ticks: { stroke: grid, width: 1 },
    size: 52
  };
  return {
    width,
    height: HEIGHT,
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: true }, y: { range: [0, 100] } },
    axes: [axis, { ...axis, values: (_plot, ticks) => ticks.map(tick => `${tick}%`) }],
    series: [
      {},
      { label: 'GPU', stroke: themeColour('--jp-brand-color1', '#1976d2'), width: 1.5 },
      { label: 'Memory', stroke: themeColour('--jp-warn-color1', '#f57c00'), width: 1.5 }
    ]
  };
}

/**
 * Utilisation and memory (both in percent) of one GPU over the history window, drawn with uPlot,
 * which redraws thousands of points per frame in a few milliseconds.
 */
export function GpuChart(props: { data: AlignedData }): JSX.Element {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  // The plot is made once, with the data of its first render; later data goes through setData.
  const firstData = useRef(props.data);

  useEffect(() => {
    const node = container.current;
    if (node === null) {
      return undefined;
    }
    plot.current = new uPlot(makeOptions(Math.max(node.clientWidth, 150)), firstData.current, node);
    // The sidebar can be resized: follow its width.
    const resize = new ResizeObserver(() => {
      plot.current?.setSize({ width: Math.max(node.clientWidth, 150), height: HEIGHT });
    });
    resize.observe(node);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);

  useEffect(() => {
    plot.current?.setData(props.data);
  }, [props.data]);

  return (
    <div
      ref={container}
      className="sciencelab-GpuChart"
      aria-label="GPU and memory utilisation over time"
    />
  );
}
