"""K copies of one network trained as one: each layer with parameters holds the K members' weights stacked, and the
members' batches travel folded into one batch dimension (member-major, ``[K * batch, ...]``).

Layers without parameters (activations, pooling, flattening, dropout, softmax over features) act on each sample,
so they need no change. Layers with parameters are replaced by stacked versions: a Linear by one batched matrix
product, a Conv by one grouped convolution. A model with any other layer that holds parameters or buffers, or
whose forward mixes samples of a batch, cannot be stacked: ``stack`` says why, and the caller trains its members
one at a time. (``torch.func.vmap`` stacks any model, but on a CPU its batched products and copies make a stack
slower than its members one after another; see docs/populations.md.)
"""
import copy

import torch
from torch import nn
from torch.nn import functional as F


class NotStackable(Exception):
    """The model cannot be trained as a stack (the reason is the message)."""


class StackedLinear(nn.Module):
    def __init__(self, layers: list[nn.Linear]):
        super().__init__()
        self.members = len(layers)
        # Stored as [K, in, out]: the batched product's gradient comes out in this layout, so accumulating it into
        # .grad needs no transposing copy (that copy cost as much as the products themselves on a CPU).
        self.weight_t = nn.Parameter(torch.stack([layer.weight.detach().t() for layer in layers]).contiguous())
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers])) if layers[0].bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        folded = x.reshape(self.members, -1, x.shape[-1])
        if self.bias is None:
            out = torch.bmm(folded, self.weight_t)
        else:
            out = torch.baddbmm(self.bias.unsqueeze(1), folded, self.weight_t)
        return out.reshape(-1, *x.shape[1:-1], out.shape[-1])


class StackedConv(nn.Module):
    """Conv1d/2d/3d of K members as one convolution with K groups (members side by side in the channels)."""

    def __init__(self, layers: list[nn.modules.conv._ConvNd]):
        super().__init__()
        first = layers[0]
        if first.padding_mode != "zeros" or isinstance(first.padding, str) and first.padding != "valid":
            raise NotStackable(f"{type(first).__name__} with padding={first.padding!r}, "
                               f"padding_mode={first.padding_mode!r}")
        self.members, self.groups = len(layers), first.groups
        self.stride, self.padding, self.dilation = first.stride, first.padding, first.dilation
        self.conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[len(first.kernel_size)]
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]))
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers])) if first.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.members
        batch = x.shape[0] // k
        spatial = x.shape[2:]
        side_by_side = x.reshape(k, batch, *x.shape[1:]).transpose(0, 1).reshape(batch, k * x.shape[1], *spatial)
        weight = self.weight.reshape(-1, *self.weight.shape[2:])
        bias = self.bias.reshape(-1) if self.bias is not None else None
        out = self.conv(side_by_side, weight, bias, self.stride, self.padding, self.dilation, k * self.groups)
        return out.reshape(batch, k, -1, *out.shape[2:]).transpose(0, 1).reshape(k * batch, -1, *out.shape[2:])


STACKED = {nn.Linear: StackedLinear, nn.Conv1d: StackedConv, nn.Conv2d: StackedConv, nn.Conv3d: StackedConv}


class Stack(nn.Module):
    """The members' network with stacked layers; ``forward`` takes and returns ``[K * batch, ...]``."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        self.members = len(models)
        self.network = _rewrite(copy.deepcopy(models[0]), models)
        layers = dict(self.network.named_modules())
        # Each member parameter's name, and where its stack lives: (layer, attribute, stored transposed).
        self.slots = {}
        for name, _ in models[0].named_parameters():
            layer, _, attribute = name.rpartition(".")
            transposed = isinstance(layers[layer], StackedLinear) and attribute == "weight"
            self.slots[name] = (layers[layer], "weight_t" if transposed else attribute, transposed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def stacked_parameters(self) -> list[nn.Parameter]:
        """The stacked parameter of each member parameter, in the members' own parameter order."""
        return [getattr(layer, attribute) for layer, attribute, _ in self.slots.values()]

    def member_state(self, k: int) -> dict:
        """Member k's weights as its own model's state_dict (a copy)."""
        state = {}
        for name, (layer, attribute, transposed) in self.slots.items():
            tensor = getattr(layer, attribute).detach()[k]
            state[name] = (tensor.t() if transposed else tensor).clone(memory_format=torch.contiguous_format)
        return state

    def keep(self, members: list[int]) -> None:
        """Go on with only these members (by their current position): the others stop costing compute."""
        index = torch.tensor(members, dtype=torch.long, device=self.stacked_parameters()[0].device)
        for module in self.network.modules():
            if isinstance(module, (StackedLinear, StackedConv)):
                module.members = len(members)
                for name in ("weight_t" if isinstance(module, StackedLinear) else "weight", "bias"):
                    p = getattr(module, name)
                    if p is not None:
                        setattr(module, name, nn.Parameter(p.detach().index_select(0, index)))
        self.members = len(members)

    def extend(self, models: list[nn.Module]) -> None:
        """Take in new members after the current ones, each from its own model (of the members' architecture)."""
        incoming = Stack(models)
        for (layer, attribute, _), (theirs, _, _) in zip(self.slots.values(), incoming.slots.values()):
            mine = getattr(layer, attribute).detach()
            new = getattr(theirs, attribute).detach().to(mine.device)
            setattr(layer, attribute, nn.Parameter(torch.cat([mine, new])))
        for module in self.network.modules():
            if isinstance(module, (StackedLinear, StackedConv)):
                module.members += len(models)
        self.members += len(models)


def _rewrite(network: nn.Module, models: list[nn.Module]) -> nn.Module:
    """Replace each layer with parameters by its stacked version, built from the members' own layers."""
    members = [dict(m.named_modules()) for m in models]
    for name, module in list(network.named_modules()):
        own = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
        if type(module) in STACKED:
            _replace(network, name, STACKED[type(module)]([m[name] for m in members]))
        elif own:
            raise NotStackable(f"its layer {name or 'model'} ({type(module).__name__}) holds parameters or buffers "
                               f"that only Linear and Conv layers can stack")
    return network


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)


def check_same_outputs(stack: Stack, models: list[nn.Module], inputs: torch.Tensor, tolerance: float = 1e-2) -> None:
    """The stack's outputs for one batch must equal each member's own: a forward that mixes the samples of a
    batch (a reduction over dim 0, a view that ignores it) would train every member on the others' data, and shows
    as differences of the outputs' own size. (The tolerance leaves room for TF32 convolutions on a GPU.)"""
    with torch.no_grad():
        was = [m.training for m in models]
        for m in models:
            m.eval()
        stack.eval()
        own_inputs = [inputs * (1 + k / 4) for k in range(len(models))]  # unlike batches, as members' are
        try:
            expected = torch.cat([m(x) for m, x in zip(models, own_inputs)])
            got = stack(torch.cat(own_inputs))
        except Exception as error:  # any failure of the stacked forward means: train one at a time
            raise NotStackable(f"its stacked forward fails: {type(error).__name__}: {error}") from None
        finally:
            for m, training in zip(models, was):
                m.train(training)
            stack.train()
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        raise NotStackable("its stacked forward returns another shape than its members'")
    scale = expected.abs().max().clamp_min(1.0)
    if (got - expected).abs().max() > tolerance * scale:
        raise NotStackable("its forward mixes the samples of a batch (stacked outputs differ from the members')")
