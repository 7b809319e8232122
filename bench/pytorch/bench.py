"""PyTorch peers of `npm run bench`'s networks, for the speed ratios it prints.

Same nets (LeNet on 28x28x1, CIFAR ResNet-20, the course's AlexNet on 32x32x3, MobileNet-fashion
on 28x28x1), batch 128, Adam,
random data; training samples/s and inference images/s for 1,000 CIFAR images, per thread count,
per wall-clock second and per second of process CPU time.
Prints one JSON object. Not part of the product: bench/run.ts runs it when Debian's
python3-torch is installed.

    /usr/bin/python3 bench/pytorch/bench.py --threads 1,2 --steps 3 [--nets lenet,inference]
"""
import argparse
import json
import time

import torch
from torch import nn

BATCH = 128


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.short = (nn.Identity() if stride == 1 and cin == cout else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


def resnet20():
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for stage, width in enumerate([16, 32, 64]):
        for block in range(3):
            layers.append(Block(cin, width, 2 if stage > 0 and block == 0 else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def alexnet():
    # 'same' padding throughout, as src/ml/architectures/alexnet.ts (32 > 8 > 4 > 2 > 1 pixels)
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, 4, 5), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
        nn.Conv2d(96, 256, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
        nn.Conv2d(256, 384, 3, 1, 1), nn.ReLU(), nn.Conv2d(384, 384, 3, 1, 1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(3, 2, 1), nn.Flatten(),
        nn.Linear(256, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(4096, 10))


def mobilenet_fashion():
    # src/ml/architectures/mobilenet-fashion.ts: stem 3x3 16, then five depthwise separable blocks
    # (depthwise 3x3 > BN > ReLU6 > pointwise 1x1 > BN > ReLU6), 28 > 14 > 7 pixels.
    layers = [nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6()]
    cin = 16
    for cout, stride in [(32, 1), (64, 2), (64, 1), (128, 2), (128, 1)]:
        layers += [nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                   nn.ReLU6(), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
                   nn.ReLU6()]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(cin, 10)]
    return nn.Sequential(*layers)


NETS = {'lenet': (lenet, (1, 28, 28)), 'resnet20': (resnet20, (3, 32, 32)),
        'alexnet': (alexnet, (3, 32, 32)), 'mobilenet': (mobilenet_fashion, (1, 28, 28))}


def train_rate(build, shape, steps):
    torch.manual_seed(0)
    model = build()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.rand(BATCH, *shape)
    y = torch.randint(0, 10, (BATCH,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    # Warm-up for at least a second, as bench/engine.ts does for the TF.js side.
    warm_until = time.perf_counter() + 1.0
    step()
    while time.perf_counter() < warm_until:
        step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    return rates(steps * BATCH, t0, c0)


def rates(samples, t0, c0):
    """Samples per wall-clock second and per second of process CPU time (all threads)."""
    return samples / (time.perf_counter() - t0), samples / (time.process_time() - c0)


def infer_rate(build, shape):
    model = build().eval()
    x = torch.rand(1000, *shape)
    with torch.no_grad():
        model(x[:10])
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, 1000, 250):
            model(x[i:i + 250])
        return rates(1000, t0, c0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--threads', default='1,2')
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--nets', default='lenet,resnet20,alexnet,mobilenet,inference',
                        help='training nets to run, and "inference" for ResNet-20 inference')
    args = parser.parse_args()
    wanted = args.nets.split(',')
    out = {'torch': torch.__version__, 'results': []}
    for threads in [int(t) for t in args.threads.split(',')]:
        torch.set_num_threads(threads)
        for name, (build, shape) in NETS.items():
            if name not in wanted:
                continue
            steps = args.steps * 10 if name == 'lenet' else args.steps
            wall, cpu = train_rate(build, shape, steps)
            out['results'].append({'net': name, 'threads': threads, 'metric': 'train',
                                   'value': wall, 'perCpuSecond': cpu})
        if 'inference' in wanted:
            wall, cpu = infer_rate(resnet20, (3, 32, 32))
            out['results'].append({'net': 'resnet20', 'threads': threads, 'metric': 'inference',
                                   'value': wall, 'perCpuSecond': cpu})
    print(json.dumps(out))


if __name__ == '__main__':
    main()
