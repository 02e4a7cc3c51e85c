import 'uplot/dist/uPlot.min.css';
import './base.css';
import './dask.css';
import './session.css';
import './sharing.css';
