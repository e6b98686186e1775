import { watch } from "./_topology.ts";
import { ADDR6, frag, ip6, NH, pattern6, routerLab6 } from "./_topology6.ts";
const lab = routerLab6();
const d = watch(lab.r);
lab.a.send(
  ip6({
    src: ADDR6.a,
    dst: ADDR6.rLan,
    proto: NH.ICMP6,
    ext: [frag(65528, true, 9)],
    payload: pattern6(16),
  }),
);
lab.clock.advance(10);
console.log(d());
