// AILyS Hub: the running session's energy and CO2 in JupyterLab's status bar, read from the
// footprint hub service (/services/footprint/api/me, footprint/service.py), and warnings 10 and
// 2 minutes before the session's walltime ends. The browser's own hub session authenticates the
// request: the service's OAuth redirects are followed by fetch (same origin, oauth_no_confirm).
import { PageConfig } from '@jupyterlab/coreutils';
import { Notification } from '@jupyterlab/apputils';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Widget } from '@lumino/widgets';

const POLL_MS = 10000;
const WARN_MINUTES = [10, 2];
const FRENCH = (navigator.language || 'fr').toLowerCase().startsWith('fr');
const T = FRENCH
  ? {
      title: 'Énergie et CO2 de cette session (estimation), depuis son début',
      warn: (m) => `Votre session se termine dans ${m} minute${m > 1 ? 's' : ''} : enregistrez votre travail (Ctrl+S).`,
      page: 'Mon empreinte'
    }
  : {
      title: "This session's energy and CO2 (estimate), since its start",
      warn: (m) => `Your session ends in ${m} minute${m > 1 ? 's' : ''}: save your work (Ctrl+S).`,
      page: 'My footprint'
    };

function serviceUrl() {
  // hubPrefix is <base_url>hub/; the service lives at <base_url>services/footprint/.
  const hubPrefix = PageConfig.getOption('hubPrefix') || '/hub/';
  const base = hubPrefix.replace(/hub\/?$/, '');
  return (PageConfig.getOption('hubHost') || '') + base + 'services/footprint/';
}

function fmt(x) {
  if (x === 0) return '0';
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 1) return x.toFixed(1);
  return x.toPrecision(2);
}

class FootprintItem extends Widget {
  constructor() {
    super({ node: document.createElement('a') });
    this.addClass('ailys-footprint');
    this.node.href = serviceUrl();
    this.node.target = '_blank';
    this.node.title = T.title;
    this.node.textContent = '⚡ …';
    this.warned = new Set();
    this.timers = [];
    this.ends = null;
  }

  async refresh() {
    let data;
    try {
      const r = await fetch(serviceUrl() + 'api/me', { credentials: 'same-origin' });
      if (!r.ok || !(r.headers.get('Content-Type') || '').includes('json')) return;
      data = await r.json();
    } catch (e) {
      return; // the service is down or restarting: keep the last figure
    }
    const server = PageConfig.getOption('hubServerName') || '';
    const session = (data.sessions || []).find((s) => s.server === server) || (data.sessions || [])[0];
    if (!session) return;
    const wh = session.energy_wh.value;
    const co2 = session.co2_g.value;
    this.node.textContent = `⚡ ${fmt(wh)} Wh · ${fmt(co2)} gCO2e`;
    this.node.dataset.wh = String(wh);
    this.node.dataset.method = session.method;
    this.node.title = `${T.title}: ${fmt(session.energy_wh.low)}–${fmt(session.energy_wh.high)} Wh, ${session.method} (${T.page})`;
    if (session.ends && session.ends !== this.ends) this.schedule(session.ends);
  }

  schedule(ends) {
    this.ends = ends;
    this.timers.forEach(clearTimeout);
    const end = Date.parse(ends);
    this.timers = WARN_MINUTES.map((m) =>
      setTimeout(() => this.warn(m), Math.max(0, end - m * 60000 - Date.now()))
    );
  }

  warn(minutes) {
    const left = (Date.parse(this.ends) - Date.now()) / 60000;
    // A page opened with 5 minutes left shows the 2-minute warning later, not a stale 10-minute one.
    if (this.warned.has(minutes) || left < 0 || WARN_MINUTES.some((m) => m < minutes && left <= m)) return;
    this.warned.add(minutes);
    this.addClass('ailys-footprint-late');
    Notification.warning(T.warn(Math.max(1, Math.round(left))), { autoClose: false });
  }
}

const plugin = {
  id: '@ailys/footprint:status',
  description: "The session's energy and CO2, and walltime warnings",
  autoStart: true,
  optional: [IStatusBar],
  activate: (app, statusBar) => {
    const item = new FootprintItem();
    if (statusBar) {
      statusBar.registerStatusItem('@ailys/footprint:status', { item, align: 'left', rank: 100 });
    }
    item.refresh();
    setInterval(() => item.refresh(), POLL_MS);
  }
};

export default plugin;
