/**
 * Compile-time checks of the sample bid requests in openrtb-samples/ against the iab-openrtb types
 * (checked by `tsc --noEmit`; the runtime half is in openrtb-samples.test.ts).
 *
 * A JSON import widens number literals (0 | 1 flags, AdCOM list codes) to `number`, so a sample file
 * cannot be assigned to `BidRequest` as is. Hence two checks:
 * - every sample file, as imported, is assignable to `Widened<BidRequest>` (right field names and kinds);
 * - four samples are also written out below as typed literals that `satisfies BidRequest` (exact codes,
 *   no unknown fields, 2.5 samples against the 2.5 types), and the test asserts each deep-equals its file.
 */
import type { BidRequest as BidRequest25 } from "iab-openrtb/v25";
import type { BidRequest as BidRequest26 } from "iab-openrtb/v26";
import audioJson from "../openrtb-samples/audio.json" with { type: "json" };
import coppaJson from "../openrtb-samples/coppa.json" with { type: "json" };
import ctvVideoJson from "../openrtb-samples/ctv-video.json" with { type: "json" };
import eidsUid2Id5RampidJson from "../openrtb-samples/eids-uid2-id5-rampid.json" with { type: "json" };
import gdpr25ExtJson from "../openrtb-samples/gdpr-2.5-ext.json" with { type: "json" };
import gdprTcfJson from "../openrtb-samples/gdpr-tcf.json" with { type: "json" };
import lmtDeviceJson from "../openrtb-samples/lmt-device.json" with { type: "json" };
import mobileAppIfaJson from "../openrtb-samples/mobile-app-ifa.json" with { type: "json" };
import multiImpJson from "../openrtb-samples/multi-imp.json" with { type: "json" };
import nativeJson from "../openrtb-samples/native.json" with { type: "json" };
import openrtb25ExtEidsJson from "../openrtb-samples/openrtb-2.5-ext-eids.json" with { type: "json" };
import usPrivacyGppJson from "../openrtb-samples/us-privacy-gpp.json" with { type: "json" };
import webBannerJson from "../openrtb-samples/web-banner.json" with { type: "json" };

/** `T` with every number / string literal type widened, as a JSON import types its values. */
type Widened<T> = T extends number
  ? number
  : T extends string
    ? string
    : T extends readonly (infer U)[]
      ? Widened<U>[]
      : T extends object
        ? { [K in keyof T]: Widened<T[K]> }
        : T;

/** Every sample file, keyed by file name, checked against the widened 2.5 or 2.6 `BidRequest`. */
export const importedSamples = {
  "audio.json": audioJson satisfies Widened<BidRequest26>,
  "coppa.json": coppaJson satisfies Widened<BidRequest26>,
  "ctv-video.json": ctvVideoJson satisfies Widened<BidRequest26>,
  "eids-uid2-id5-rampid.json": eidsUid2Id5RampidJson satisfies Widened<BidRequest26>,
  "gdpr-2.5-ext.json": gdpr25ExtJson satisfies Widened<BidRequest25>,
  "gdpr-tcf.json": gdprTcfJson satisfies Widened<BidRequest26>,
  "lmt-device.json": lmtDeviceJson satisfies Widened<BidRequest26>,
  "mobile-app-ifa.json": mobileAppIfaJson satisfies Widened<BidRequest26>,
  "multi-imp.json": multiImpJson satisfies Widened<BidRequest26>,
  "native.json": nativeJson satisfies Widened<BidRequest26>,
  "openrtb-2.5-ext-eids.json": openrtb25ExtEidsJson satisfies Widened<BidRequest25>,
  "us-privacy-gpp.json": usPrivacyGppJson satisfies Widened<BidRequest26>,
  "web-banner.json": webBannerJson satisfies Widened<BidRequest26>,
};

export const webBanner = {
  id: "5b1e7c0a-3f24-4d8e-b6a1-92c4e0f7d315",
  imp: [
    {
      id: "1",
      tagid: "hp-leaderboard-atf",
      banner: {
        format: [
          {
            w: 728,
            h: 90,
          },
          {
            w: 970,
            h: 90,
          },
          {
            w: 970,
            h: 250,
          },
        ],
        pos: 1,
        api: [5, 7],
      },
      bidfloor: 0.45,
      bidfloorcur: "USD",
      secure: 1,
    },
  ],
  site: {
    id: "site-20871",
    name: "The Crumb Report",
    domain: "thecrumbreport.com",
    cat: ["IAB8", "IAB8-5"],
    page: "https://www.thecrumbreport.com/recipes/brown-butter-sourdough-focaccia",
    ref: "https://www.google.com/",
    keywords: "sourdough,focaccia,baking,bread",
    mobile: 0,
    privacypolicy: 1,
    publisher: {
      id: "pub-10442",
      name: "Crumb Media LLC",
      domain: "thecrumbreport.com",
    },
  },
  device: {
    ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    sua: {
      browsers: [
        {
          brand: "Google Chrome",
          version: ["131", "0", "6778", "86"],
        },
        {
          brand: "Chromium",
          version: ["131", "0", "6778", "86"],
        },
        {
          brand: "Not_A Brand",
          version: ["24", "0", "0", "0"],
        },
      ],
      platform: {
        brand: "Windows",
        version: ["15", "0", "0"],
      },
      mobile: 0,
      architecture: "x86",
      bitness: "64",
      source: 2,
    },
    ip: "203.0.113.27",
    geo: {
      country: "USA",
      region: "OR",
      city: "Portland",
      zip: "97209",
      type: 2,
      utcoffset: -480,
    },
    devicetype: 2,
    os: "Windows",
    osv: "10",
    js: 1,
    language: "en",
    dnt: 0,
    w: 1920,
    h: 1080,
  },
  user: {
    id: "dx-7c1e9a4b52f8406d",
    buyeruid: "5f0c8e7a-d3b1-4c29-a6e4-9b2f71d08c35",
  },
  at: 1,
  tmax: 120,
  cur: ["USD"],
  bcat: ["IAB25", "IAB26"],
  source: {
    tid: "0e8d5c41-7a2b-4f93-a1c6-3b9e2d7f5a08",
    schain: {
      complete: 1,
      ver: "1.0",
      nodes: [
        {
          asi: "demo-exchange.com",
          sid: "pub-10442",
          hp: 1,
        },
      ],
    },
  },
  regs: {
    coppa: 0,
    gdpr: 0,
  },
} satisfies BidRequest26;

export const ctvVideo = {
  id: "8e3d0b6f-c1a7-42e9-b5d8-4f7a2c91e06b",
  imp: [
    {
      id: "1",
      tagid: "roku-ch-77421-midroll",
      video: {
        mimes: ["video/mp4", "application/x-mpegURL"],
        minduration: 15,
        maxduration: 30,
        protocols: [2, 3, 7, 8],
        w: 1920,
        h: 1080,
        startdelay: -1,
        plcmt: 1,
        linearity: 1,
        skip: 0,
        podid: "pod-2",
        podseq: 0,
        maxseq: 4,
        poddur: 120,
        playbackmethod: [1],
        delivery: [1],
        minbitrate: 2000,
        maxbitrate: 15000,
        pos: 7,
      },
      bidfloor: 18.5,
      bidfloorcur: "USD",
      secure: 1,
    },
  ],
  app: {
    id: "app-77421",
    name: "Trailside TV",
    bundle: "77421",
    storeurl: "https://channelstore.roku.com/details/77421/trailside-tv",
    cat: ["IAB17", "IAB20"],
    privacypolicy: 1,
    publisher: {
      id: "pub-60219",
      name: "Trailside Media",
      domain: "trailside.tv",
    },
    content: {
      id: "ep-s03e07",
      title: "Climbing the High Sierra",
      series: "Trailside Adventures",
      season: "3",
      episode: 7,
      genre: "Outdoors",
      language: "en",
      len: 2640,
      livestream: 0,
      prodq: 1,
      context: 1,
      network: {
        id: "net-19",
        name: "Trailside Media",
        domain: "trailside.tv",
      },
      channel: {
        id: "ch-77421",
        name: "Trailside TV",
        domain: "trailside.tv",
      },
    },
  },
  device: {
    ua: "Roku/DVP-14.0 (14.0.4.5214-46)",
    ip: "203.0.113.88",
    geo: {
      country: "USA",
      region: "CO",
      metro: "751",
      zip: "80202",
      type: 2,
    },
    devicetype: 3,
    make: "Roku",
    model: "Ultra 4850X",
    os: "Roku OS",
    osv: "14.0",
    w: 1920,
    h: 1080,
    js: 0,
    language: "en",
    connectiontype: 2,
    ifa: "4e8b1d2f-6a93-4c07-b1e4-87d2f0a9c36b",
    lmt: 0,
    ext: {
      ifa_type: "rida",
    },
  },
  at: 1,
  tmax: 500,
  cur: ["USD"],
  source: {
    tid: "6f2a7d90-b8c3-41e5-9a0d-e3c5f71b2846",
    schain: {
      complete: 1,
      ver: "1.0",
      nodes: [
        {
          asi: "demo-exchange.com",
          sid: "pub-60219",
          hp: 1,
        },
      ],
    },
  },
  regs: {
    coppa: 0,
  },
} satisfies BidRequest26;

export const eidsUid2Id5RampId = {
  id: "e7b2d05c-9f13-4a6e-8c4d-3a1f6e9b0d58",
  imp: [
    {
      id: "1",
      tagid: "story-inline-1",
      banner: {
        format: [
          {
            w: 300,
            h: 250,
          },
          {
            w: 336,
            h: 280,
          },
        ],
        pos: 3,
        api: [5, 7],
      },
      bidfloor: 1.1,
      bidfloorcur: "USD",
      secure: 1,
    },
  ],
  site: {
    id: "site-72615",
    name: "Gear & Gadget Review",
    domain: "gearandgadgetreview.com",
    cat: ["IAB19", "IAB19-20"],
    page: "https://www.gearandgadgetreview.com/laptops/best-ultrabooks-for-business-travel",
    ref: "https://www.bing.com/",
    privacypolicy: 1,
    publisher: {
      id: "pub-72615",
      name: "G&G Digital",
      domain: "gearandgadgetreview.com",
    },
  },
  device: {
    ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    sua: {
      browsers: [
        {
          brand: "Google Chrome",
          version: ["131", "0", "6778", "86"],
        },
        {
          brand: "Chromium",
          version: ["131", "0", "6778", "86"],
        },
        {
          brand: "Not_A Brand",
          version: ["24", "0", "0", "0"],
        },
      ],
      platform: {
        brand: "Windows",
        version: ["15", "0", "0"],
      },
      mobile: 0,
      architecture: "x86",
      bitness: "64",
      source: 2,
    },
    ip: "198.51.100.58",
    geo: {
      country: "USA",
      region: "WA",
      city: "Seattle",
      zip: "98101",
      type: 2,
    },
    devicetype: 2,
    os: "Windows",
    osv: "10",
    js: 1,
    language: "en",
  },
  user: {
    eids: [
      {
        source: "uidapi.com",
        uids: [
          {
            id: "B/KvRGtu4NXRKr1RQJuvuiYzAqL8f+VmD/BrIN1sfrs=",
            atype: 3,
          },
        ],
      },
      {
        source: "id5-sync.com",
        uids: [
          {
            id: "ID5*b+Sap5N9TLzDabGZ8zg/tpu/Gi9qmBRoPHV5plonjyRMYVY0WMg7k/9v/Xcq+C31",
            atype: 1,
            ext: {
              linkType: 2,
            },
          },
        ],
      },
      {
        source: "liveramp.com",
        uids: [
          {
            id: "XY1000o_Q65PNCeQwHpEDujESWkknT4GlVo_4xRYcsmhaql_h",
            atype: 3,
          },
        ],
      },
    ],
  },
  at: 1,
  tmax: 120,
  cur: ["USD"],
  source: {
    tid: "71c4f0a8-3b5e-4d92-af16-e8d2b9c05a34",
    schain: {
      complete: 1,
      ver: "1.0",
      nodes: [
        {
          asi: "demo-exchange.com",
          sid: "pub-72615",
          hp: 1,
        },
      ],
    },
  },
  regs: {
    coppa: 0,
    gdpr: 0,
    us_privacy: "1YNN",
  },
} satisfies BidRequest26;

export const openrtb25ExtEids = {
  id: "3a8c1f6e-d49b-4e27-b0a5-9f2e7c13d684",
  imp: [
    {
      id: "1",
      tagid: "recipe-sidebar-300x600",
      banner: {
        w: 300,
        h: 600,
        format: [
          {
            w: 300,
            h: 600,
          },
          {
            w: 160,
            h: 600,
          },
        ],
        pos: 1,
      },
      bidfloor: 0.7,
      bidfloorcur: "USD",
      secure: 1,
    },
  ],
  site: {
    id: "site-10385",
    name: "Weeknight Pantry",
    domain: "weeknightpantry.com",
    cat: ["IAB8", "IAB8-9"],
    page: "https://www.weeknightpantry.com/dinner/one-pan-lemon-chicken-orzo",
    privacypolicy: 1,
    publisher: {
      id: "pub-10385",
      name: "Pantry Publishing",
      domain: "weeknightpantry.com",
    },
  },
  device: {
    ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    ip: "203.0.113.112",
    geo: {
      country: "USA",
      region: "VA",
      city: "Richmond",
      zip: "23220",
      type: 2,
    },
    devicetype: 2,
    os: "macOS",
    osv: "10.15.7",
    js: 1,
    language: "en",
  },
  user: {
    buyeruid: "25-b3e1f09c7d2a4865",
    ext: {
      eids: [
        {
          source: "uidapi.com",
          uids: [
            {
              id: "Jc7xq2MZ0pVh8GkT1eW9sYb4RuN6dLf3oAiKv5nQwEg=",
              atype: 3,
            },
          ],
        },
        {
          source: "liveramp.com",
          uids: [
            {
              id: "XY1000KLa4KskdTee-O7b_rlbjWFdjRY1xG-ggLW93LS2qmXr",
              atype: 3,
            },
          ],
        },
      ],
    },
  },
  at: 2,
  tmax: 120,
  cur: ["USD"],
  source: {
    tid: "9d5b2e7f-60c1-4a38-b4f9-c2e8a1d70f36",
    ext: {
      schain: {
        complete: 1,
        ver: "1.0",
        nodes: [
          {
            asi: "demo-exchange.com",
            sid: "pub-10385",
            hp: 1,
          },
        ],
      },
    },
  },
  regs: {
    coppa: 0,
    ext: {
      us_privacy: "1YNN",
    },
  },
} satisfies BidRequest25;

/** The typed copies above, keyed by the file they must equal. */
export const typedSamples: Record<string, BidRequest25 | BidRequest26> = {
  "web-banner.json": webBanner,
  "ctv-video.json": ctvVideo,
  "eids-uid2-id5-rampid.json": eidsUid2Id5RampId,
  "openrtb-2.5-ext-eids.json": openrtb25ExtEids,
};
