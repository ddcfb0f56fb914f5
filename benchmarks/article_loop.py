"""Baseline for benchmarks/bench_single_image.py: a plain eager re-run of the article's loop.

Default torch settings, nn.Module model, autograd, torch.optim.Adam; 5000 full-batch steps on the raw 0-255 "4".
It is kept deliberately plain: it is the yardstick that filterlab's single-image trainer is measured against.
"""

import sys
import time

t_start = time.perf_counter()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 5, kernel_size=28)
        self.fc = nn.Linear(5, 10)

    def forward(self, x):
        x = self.conv(x).view(-1, 5)
        return F.log_softmax(self.fc(x), dim=1)


def main(path):
    img = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    x = torch.from_numpy(img).view(1, 1, 28, 28)
    y = torch.tensor([4])
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
    t0 = time.perf_counter()
    for _ in range(5000):
        opt.zero_grad()
        loss = F.nll_loss(net(x), y)
        loss.backward()
        opt.step()
    t1 = time.perf_counter()
    print(f"train_s={t1 - t0:.3f} total_s={t1 - t_start:.3f} loss={loss.item():.3g}")


if __name__ == "__main__":
    main(sys.argv[1])
