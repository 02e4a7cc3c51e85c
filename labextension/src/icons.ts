import { LabIcon } from '@jupyterlab/ui-components';

import sciencelabSvgstr from '../style/icons/sciencelab.svg';

/**
 * The ScienceLab logo, used for the sidebar tab and the command.
 */
export const sciencelabIcon = new LabIcon({
  name: 'sciencelab:logo',
  svgstr: sciencelabSvgstr
});
