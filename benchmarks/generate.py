"""Synthetic dumps for benchmarks: Daily Papers pages about NeuroAI, with a known truth.

    python -m benchmarks.generate OUT_DIR --records N [--seed S]

`generate_corpus` writes `%06d_synthetic.txt` dumps into OUT_DIR, in the three layouts
the real dumps use (see dumps/000..004 and neuroai_papers/parse.py):

1. `blank_lines`: page header, the page date (`Sep 8`), then title / abstract, every
   line followed by a blank line;
2. `blank_lines_with_metadata`: the same, plus after each abstract a metadata block
   (`  • N authors` or an organization line, `·`, a date line with an optional comment
   count), parts of it or all of it sometimes missing;
3. `no_blank_lines`: no blank lines at all, the header glued to the first title
   (`SubscribeVideoChat: ...`), titles and abstracts alternating.

Some records repeat papers of earlier dumps (same abstract, sometimes cut short; the
title identical or a variant: case, punctuation, dashes, quotes, spaces, a trailing
period or a one-letter typo) and a few are look-alikes: new papers whose title differs
from an existing paper's by one word. The truth, written next to OUT_DIR as
`OUT_DIR-truth.json`, says which distinct paper every record is.

Everything is a function of the seed (random.Random(seed), never the global random,
never the clock). Each paper's text is a function of (seed, paper index), so a repeat
regenerates its paper instead of keeping all abstracts in memory; dumps are written
one at a time.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import hashlib
import itertools
import json
import random
import re
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

# ---------------------------------------------------------------------------------------
# Vocabulary. Lowercase unless a word is always written otherwise (fMRI, Hebbian).

VOCAB: dict[str, list[str]] = {
    "model_pl": [
        "spiking neural networks", "transformers", "recurrent neural networks",
        "convolutional neural networks", "state-space models", "diffusion models",
        "large language models", "vision transformers", "graph neural networks",
        "Kolmogorov-Arnold networks", "neural operators", "variational autoencoders",
        "sparse autoencoders", "Hopfield networks", "liquid neural networks", "neural ODEs",
        "mixture-of-experts models", "world models", "predictive coding networks",
        "energy-based models", "reservoir computers", "normalizing flows",
        "implicit neural representations", "neural fields", "vision-language models",
        "foundation models", "deep neural networks", "echo state networks",
        "attractor networks", "capsule networks", "Boltzmann machines",
        "multilayer perceptrons", "selective state-space models", "linear recurrent units",
        "hypernetworks", "dendritic neuron models", "leaky integrate-and-fire networks",
        "spiking transformers", "masked autoencoders", "latent variable models",
        "Fourier neural operators", "continuous-time recurrent networks",
        "binary neural networks", "modern Hopfield networks", "gated recurrent networks",
    ],
    "model_sg": [
        "spiking transformer", "state-space model", "diffusion model", "language model",
        "graph neural network", "Kolmogorov-Arnold network", "neural operator",
        "recurrent network", "convolutional network", "vision transformer", "autoencoder",
        "sparse autoencoder", "Hopfield network", "predictive coding network", "world model",
        "foundation model", "mixture-of-experts model", "neural field", "masked autoencoder",
        "contrastive encoder", "latent variable model", "reservoir computer",
        "liquid time-constant network", "variational autoencoder", "energy-based model",
        "normalizing flow", "neural ODE", "dendritic network", "Mamba-style encoder",
        "spiking neural network", "echo state network", "attractor network",
        "hypernetwork", "multimodal transformer", "latent diffusion model",
        "vision-language model", "point-process model", "Gaussian process model",
    ],
    "task": [
        "brain decoding", "image reconstruction", "speech decoding", "neural encoding",
        "seizure detection", "motor imagery classification", "sleep staging",
        "emotion recognition", "object recognition", "visual navigation",
        "working memory", "path integration", "few-shot learning", "language modeling",
        "video understanding", "action recognition", "anomaly detection",
        "time-series forecasting", "brain age prediction", "connectome reconstruction",
        "cell type classification", "spike sorting", "population dynamics modeling",
        "image classification", "semantic segmentation", "visual question answering",
        "scene understanding", "motor control", "reward learning", "sequence learning",
        "pattern completion", "visual search", "gesture recognition", "keyword spotting",
        "text-to-image generation", "3D reconstruction", "stimulus reconstruction",
        "neural data compression", "artifact removal", "event detection", "decision making",
        "credit assignment", "sensorimotor integration", "multisensory integration",
        "trajectory prediction", "language comprehension", "speech synthesis",
        "disease classification", "lesion segmentation", "behavior prediction",
        "odor classification", "texture discrimination", "optical flow estimation",
        "depth estimation", "continual adaptation", "caption generation",
    ],
    "signal": [
        "fMRI", "EEG", "MEG", "ECoG", "intracranial EEG", "calcium imaging",
        "two-photon imaging", "Neuropixels recordings", "spike trains",
        "local field potentials", "single-unit recordings", "fNIRS", "diffusion MRI",
        "BOLD signals", "multi-electrode array recordings", "stereo-EEG", "EMG",
        "widefield imaging", "voltage imaging", "resting-state fMRI", "naturalistic fMRI",
        "scalp EEG", "high-density EEG", "retinal ganglion cell responses",
        "event camera streams", "neural spiking data", "whole-brain recordings",
        "electrophysiology", "structural MRI", "ultrasound imaging", "Utah array recordings",
    ],
    "area": [
        "visual cortex", "primary visual cortex", "V1", "V4", "inferotemporal cortex",
        "hippocampus", "prefrontal cortex", "motor cortex", "auditory cortex", "thalamus",
        "basal ganglia", "cerebellum", "entorhinal cortex", "posterior parietal cortex",
        "somatosensory cortex", "olfactory bulb", "retina", "language network",
        "default mode network", "ventral stream", "dorsal stream", "superior colliculus",
        "mushroom body", "cortical microcircuits", "orbitofrontal cortex",
        "anterior cingulate cortex", "higher visual areas", "grid cell system",
        "place cell network", "striatum", "amygdala", "neocortex",
        "lateral geniculate nucleus", "medial temporal lobe", "premotor cortex",
        "barrel cortex", "insular cortex", "brainstem",
    ],
    "species": [
        "human", "mouse", "macaque", "rat", "zebrafish", "Drosophila", "marmoset",
        "songbird", "primate", "rodent", "ferret", "cat",
    ],
    "technique": [
        "contrastive learning", "self-supervised learning", "Hebbian plasticity",
        "spike-timing-dependent plasticity", "continual learning", "meta-learning",
        "knowledge distillation", "reinforcement learning", "backpropagation through time",
        "surrogate gradients", "local learning rules", "dendritic computation",
        "attention mechanisms", "predictive coding", "active inference",
        "representational similarity analysis", "linear probing",
        "mechanistic interpretability", "dictionary learning", "low-rank adaptation",
        "synaptic consolidation", "homeostatic plasticity", "lateral inhibition",
        "neuromodulation", "dynamic sparsity", "quantization-aware training",
        "structured pruning", "curriculum learning", "equilibrium propagation",
        "eligibility traces", "experience replay", "masked modeling", "optimal transport",
        "score matching", "flow matching", "in-context learning", "sparse coding",
        "divisive normalization", "gain modulation", "recurrent feedback",
        "top-down attention", "winner-take-all dynamics", "oscillatory synchronization",
        "manifold learning", "topological data analysis", "Bayesian inference",
        "variational inference", "Gaussian processes", "canonical correlation analysis",
        "ridge regression", "adversarial training", "neural architecture search",
        "weight sharing", "token merging", "rotary position embeddings",
        "feedback alignment", "target propagation", "generative replay",
        "Hebbian learning", "synaptic intelligence", "neural tangent kernels",
        "dimensionality reduction", "activation steering", "causal abstraction",
    ],
    "property": [
        "robustness", "interpretability", "energy efficiency", "generalization",
        "sample efficiency", "scalability", "brain alignment", "compositionality",
        "sparsity", "stability", "plasticity", "biological plausibility", "calibration",
        "expressivity", "catastrophic forgetting", "temporal precision", "noise tolerance",
        "adversarial robustness", "out-of-distribution generalization",
        "representational drift", "memory capacity", "inference latency",
        "training stability", "parameter efficiency", "long-range dependencies",
        "invariance", "uncertainty", "modularity", "convergence", "fairness",
    ],
    "adj": [
        "biologically plausible", "brain-inspired", "energy-efficient", "scalable",
        "interpretable", "hierarchical", "sparse", "multimodal", "cross-subject",
        "self-supervised", "event-driven", "low-latency", "robust", "generalizable",
        "lightweight", "unified", "dynamic", "adaptive", "recurrent", "probabilistic",
        "geometric", "causal", "zero-shot", "fine-grained", "long-range", "cross-modal",
        "data-efficient", "differentiable", "continual", "neuromorphic", "subject-agnostic",
        "modular", "compositional", "equivariant", "spatiotemporal", "multiscale",
        "label-efficient", "training-free", "physics-informed", "bio-inspired",
        "resource-aware", "explainable", "efficient", "local", "online", "stochastic",
        "structured", "contrastive", "generative", "universal", "temporal", "visual",
        "auditory", "semantic", "neural", "deep", "shallow", "implicit", "latent",
    ],
    "hardware": [
        "neuromorphic hardware", "Loihi 2", "SpiNNaker", "memristor crossbars",
        "edge devices", "FPGAs", "analog in-memory computing", "neuromorphic chips",
        "resistive RAM arrays", "photonic processors", "microcontrollers", "TrueNorth",
        "event-based vision sensors", "wearable devices", "implantable devices",
    ],
    "dataset": [
        "the Natural Scenes Dataset", "THINGS-EEG", "the Algonauts 2023 challenge",
        "ImageNet", "CIFAR-10", "CIFAR-100", "N-MNIST", "DVS128 Gesture",
        "the Spiking Heidelberg Digits", "BCI Competition IV 2a", "MOABB",
        "the Allen Brain Observatory", "MICrONS", "the Human Connectome Project",
        "UK Biobank", "the TUH EEG Corpus", "Sleep-EDF", "Brain-Score",
        "the Neural Latents Benchmark", "THINGS-fMRI", "BOLD5000", "the Narratives dataset",
        "CHB-MIT", "SEED", "DEAP", "ABIDE", "ADNI", "the FlyWire connectome",
        "Kinetics-400", "Speech Commands", "LibriSpeech", "NSD-Imagery", "ZuCo",
        "the Allen Visual Coding dataset", "HCP-YA", "OpenNeuro ds003", "CamCAN",
    ],
    "metric": [
        "accuracy", "Pearson correlation", "SSIM", "top-1 accuracy", "F1 score",
        "bits per spike", "explained variance", "balanced accuracy", "energy per inference",
        "latency", "CLIP similarity", "noise-normalized correlation", "AUROC",
        "word error rate", "retrieval accuracy", "mean squared error", "Fréchet distance",
        "decoding accuracy", "R^2", "Spearman correlation", "Cohen's kappa",
    ],
    "cogfunc": [
        "visual object recognition", "spatial navigation", "working memory",
        "language comprehension", "decision making", "motor planning", "episodic memory",
        "selective attention", "perceptual learning", "reward-based learning",
        "sensory prediction", "auditory scene analysis", "face perception",
        "numerical cognition", "abstract reasoning", "sequence memory",
        "multisensory integration", "motor learning", "categorization", "mental imagery",
        "speech perception", "predictive processing", "cognitive control",
    ],
    "biomech": [
        "dendritic gating", "synaptic scaling", "short-term plasticity",
        "dopaminergic modulation", "grid cell codes", "theta oscillations",
        "sharp-wave ripples", "lateral inhibition", "cortical feedback",
        "thalamocortical loops", "astrocytic modulation", "neurogenesis",
        "spike-frequency adaptation", "predictive remapping", "sparse population coding",
        "excitatory-inhibitory balance", "neuromodulatory gating", "cholinergic signaling",
        "synaptic tagging", "replay during sleep", "columnar organization",
        "retinotopic maps", "sensory adaptation", "refractory dynamics",
        "gamma oscillations", "heterosynaptic plasticity", "inhibitory interneurons",
        "receptive field structure", "traveling waves", "metaplasticity",
    ],
    "component": [
        "spiking attention module", "gated memory unit", "hippocampal replay buffer",
        "thalamic routing layer", "dendritic gating unit", "predictive coding block",
        "sparse mixture-of-experts layer", "subject-specific adapter",
        "cross-modal alignment head", "temporal convolution stem", "learnable tokenizer",
        "spectral encoder", "state-space backbone", "contrastive projection head",
        "diffusion prior", "latent diffusion decoder", "graph attention layer",
        "recurrent controller", "lateral inhibition layer", "homeostatic regularizer",
        "Kolmogorov-Arnold layer", "spline-based activation", "neural operator layer",
        "retrieval module", "membrane potential encoder", "spike encoder",
        "channel attention block", "wavelet front-end", "Fourier feature encoder",
        "slot attention module", "region-of-interest pooling layer", "cortical column module",
        "episodic memory store", "gain control unit", "dendritic branch layer",
    ],
    "field": [
        "neuroscience", "machine learning", "computational neuroscience",
        "artificial intelligence", "cognitive science", "neuromorphic engineering",
        "brain-computer interfaces", "robotics", "clinical neurology", "psychiatry",
        "neuroimaging", "deep learning theory", "systems neuroscience", "neuroengineering",
    ],
    "loss": [
        "contrastive", "masked reconstruction", "InfoNCE", "variational",
        "denoising diffusion", "next-token prediction", "mutual information", "triplet",
        "cross-entropy", "spike-count", "Poisson likelihood", "optimal transport",
        "distillation", "energy-based", "cycle-consistency", "CLIP-style", "score-matching",
    ],
    "baseline": [
        "strong transformer baselines", "state-of-the-art methods", "conventional ANNs",
        "ridge regression baselines", "linear decoders", "prior spiking models",
        "CNN baselines", "Mamba baselines", "existing foundation models",
        "subject-specific models", "LSTM baselines", "artificial neural network counterparts",
        "handcrafted feature pipelines", "previous brain decoding methods",
        "dense transformer baselines", "backpropagation-trained networks",
    ],
    "stim": [
        "natural images", "naturalistic videos", "spoken narratives", "natural scenes",
        "moving gratings", "faces", "written sentences", "music", "odors",
        "tactile textures", "complex sounds", "visual motion", "objects", "words",
        "movie clips", "speech", "imagined images", "drifting dots", "line drawings",
    ],
    "challenge": [
        "the scarcity of labeled recordings", "large inter-subject variability",
        "the low signal-to-noise ratio of non-invasive recordings",
        "the mismatch between artificial and biological learning rules",
        "the high energy cost of dense matrix multiplications",
        "the non-differentiable nature of spikes", "catastrophic interference between tasks",
        "the quadratic cost of self-attention", "the lack of standardized benchmarks",
        "the opacity of learned representations", "distribution shift across sessions",
        "the limited temporal resolution of the hemodynamic response",
        "the combinatorial explosion of possible circuit configurations",
        "the gap between in silico models and in vivo measurements",
    ],
    "verb": [
        "decode", "predict", "reconstruct", "explain", "compress", "align", "model",
        "forecast", "classify", "interpret", "synthesize", "disentangle", "segment",
        "localize", "track", "simulate",
    ],
    "finding": [
        "early layers mirror the tuning of V1 neurons",
        "sparse activity emerges without explicit regularization",
        "the learned latents are organized along a low-dimensional manifold",
        "units with grid-like firing fields emerge spontaneously",
        "deeper layers better predict responses in higher visual areas",
        "performance scales log-linearly with the amount of recorded data",
        "representations remain stable despite substantial synaptic turnover",
        "attention heads specialize into interpretable functional groups",
        "forgetting is reduced by an order of magnitude",
        "cross-subject transfer works even with minutes of calibration data",
        "model-brain similarity peaks at intermediate depth",
        "the network discovers an oscillatory code for elapsed time",
        "single neurons carry mixed selectivity for task variables",
        "decoding accuracy saturates after a few hundred training trials",
        "the routing patterns resemble known anatomical pathways",
        "training with noise improves alignment with neural data",
    ],
    "goal": [
        "more efficient artificial intelligence", "brain-like machine perception",
        "clinically useful brain-computer interfaces", "interpretable foundation models",
        "lifelong learning agents", "low-power intelligence at the edge",
        "a mechanistic understanding of cortical computation", "neural prosthetics",
        "scalable models of whole-brain dynamics", "trustworthy neurotechnology",
        "unified theories of learning in brains and machines",
    ],
    "user": [
        "neuroai-lab", "brainml", "spikelab", "cortex-group", "nsd-decoding", "hebbian-ai",
        "neuromorphic-lab", "kan-research", "bci-lab", "cogcomp", "mind-vision",
        "synapse-ai", "neurodyn", "visionbrain", "openneuroai",
    ],
}

# Words of a title that a look-alike may swap for another of the same group.
SWAP_GROUPS: list[list[str]] = [
    ["classification", "segmentation", "detection", "prediction", "recognition",
     "reconstruction", "generation", "estimation", "retrieval", "localization"],
    ["fMRI", "EEG", "MEG", "ECoG", "fNIRS", "EMG"],
    ["visual", "auditory", "motor", "somatosensory", "olfactory", "semantic", "temporal"],
    ["mouse", "macaque", "human", "rat", "zebrafish", "marmoset", "primate", "rodent"],
    ["spiking", "recurrent", "convolutional", "graph", "sparse", "dense", "deep", "shallow"],
    ["transformers", "networks", "models", "autoencoders", "operators", "encoders"],
    ["transformer", "network", "model", "autoencoder", "operator", "encoder", "decoder"],
    ["hippocampus", "thalamus", "cerebellum", "retina", "striatum", "amygdala", "neocortex"],
    ["learning", "inference", "training", "adaptation", "optimization", "planning"],
    ["efficient", "robust", "scalable", "adaptive", "interpretable", "unified", "dynamic",
     "hierarchical", "multimodal", "lightweight", "generalizable", "continual", "causal"],
    ["images", "videos", "sentences", "sounds", "scenes", "words", "faces", "objects"],
    ["memory", "attention", "perception", "navigation", "reasoning", "control", "imagery"],
    ["decoding", "encoding", "modeling", "forecasting", "mapping", "probing", "alignment"],
    ["cortex", "brain", "circuits", "neurons", "synapses", "dendrites"],
    ["robustness", "generalization", "efficiency", "sparsity", "stability", "plasticity",
     "interpretability", "calibration", "expressivity", "scalability"],
]
SWAP: dict[str, list[str]] = {word.lower(): group for group in SWAP_GROUPS for word in group}
SWAP_FALLBACK = ["Efficient", "Robust", "Sparse", "Adaptive", "Scalable", "Unified", "Deep"]

# Title templates. Those with a colon, a question or a quote only stand alone.
SUBTITLES = [
    "{adj} {model_pl} for {task}",
    "{task} from {signal} with {model_pl}",
    "{adj} {task} from {species} {signal}",
    "learning {adj} representations of {signal} with {technique}",
    "towards {adj} {task} via {technique}",
    "{model_pl} as models of the {species} {area}",
    "on the {property} of {model_pl} trained with {technique}",
    "{technique} enables {adj} {task} in {model_pl}",
    "a {adj} {model_sg} for {task} on {hardware}",
    "aligning {model_pl} with the {species} {area}",
    "{biomech} improves {property} in {model_pl}",
    "scaling {adj} {model_pl} for cross-subject {task}",
    "decoding {stim} from {species} {signal} using {model_pl}",
    "rethinking {technique} for {adj} {model_pl}",
    "what {model_pl} reveal about {cogfunc} in the {area}",
    "{adj} and {adj2} {model_pl} through {technique}",
    "bridging {field} and {field2} with {adj} {model_pl}",
    "{property}, {property2}, and {property3} in {adj} {model_pl}",
    "a {adj} benchmark for {task} with {signal}",
    "{species} {area} responses to {stim} are predicted by {model_pl}",
    "modeling {cogfunc} with {adj} {model_pl}",
    "{adj} {model_sg} with {biomech} for {task}",
    "mapping {signal} to {stim} with a {adj} {model_sg}",
    "probing {property} in {model_pl} with {technique}",
    "{task} on {hardware} using {adj} {model_pl}",
    "{adj} {technique} for {model_pl} on {hardware}",
    "emergent {biomech} in {model_pl} trained on {stim}",
    "revisiting {technique} in the era of {model_pl}",
    "{model_pl} with {biomech} learn {adj} codes for {stim}",
    "{adj} {task} with {technique} and {technique2}",
    "a {adj} {model_sg} of the {species} {area}",
    "{technique} in {adj} {model_pl}, revisited",
    "joint {task} and {task2} from {signal}",
    "{adj}, {adj2} {task} with {model_pl}",
    "self-supervised pretraining on {signal} for {task}",
    "brain-inspired {component} for {adj} {task}",
    "a {component} for {property} in {model_pl}",
    "{task} in the {area} via {adj} {technique}",
]
STANDALONE = [
    "do {model_pl} see like the {species} {area}?",
    "when {technique} meets {model_pl}: {property} and {property2}",
    "the brain's {biomech} as an inductive bias for {model_pl}",
    "why {model_pl} don't {verb} like the {area}",
    "is {technique} all you need for {task}?",
    '"{technique}" in {model_pl}: a {adj} perspective',
    "from {signal} to {stim}: {adj} {task} with {model_pl}",
    "can {model_pl} {verb} {species} {signal}?",
    "{cogfunc} in brains and machines: a {adj} account of {technique}",
    "how the {area}'s {biomech} shapes {property} in {model_pl}",
]
SMALL_WORDS = frozenset(
    "a an and as at but by for from in into nor of on or the to via vs with".split()
)

NAME_PREFIX = [
    "Neuro", "Brain", "Spike", "Cortex", "Synapse", "Axon", "Dendri", "Glia", "Hebb",
    "Retina", "Hippo", "Thalamo", "Mind", "Cogni", "Neur", "Syn", "Astro", "Vision",
    "Omni", "Meta", "Bio", "Hyper", "Liquid", "Cere", "Neo", "Volt", "Pulse", "Wave",
    "Echo", "Grid", "Place", "Sense", "Percept", "Cortico", "Psy", "Memo", "Plast",
]
NAME_SUFFIX = [
    "Former", "Net", "GPT", "Diff", "Mamba", "KAN", "Flow", "CLIP", "Bench", "Lens",
    "Scope", "Map", "LM", "SAM", "Gen", "Fuse", "Align", "Tok", "Mixer", "ODE", "Field",
    "Graph", "Code", "Dec", "Vid", "Chat", "Bridge", "X", "Agent", "Sense", "Prompt",
    "Voxel", "Spike", "Fold", "Path", "Cast", "Sync", "Loop", "Dream", "Atlas",
]
NAME_TAIL = ["", "", "", "", "", "-2", "++", "3D", "-XL", "-Lite", " V2", "-1B", "-S"]
NAME_LOWER_PREFIX = ["i", "m", "e", "x", "u"]
LETTERS = "ABCDEFGHIJKLMNOPRSTUVW"

ORGANIZATIONS = [
    "SakanaAI Sakana AI", "pathwaycom Pathway", "google Google", "Korea University",
    "deepmind Google DeepMind", "facebook AI at Meta", "microsoft Microsoft",
    "nvidia NVIDIA", "allenai Ai2", "Intel Intel", "ibm IBM", "apple Apple",
    "huggingface Hugging Face", "EleutherAI EleutherAI", "Qwen Qwen",
    "ByteDance-Seed ByteDance Seed", "Tsinghua University", "Peking University",
    "University of Oxford", "ETH Zurich", "Stanford University", "MIT",
]

MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
               "Nov", "Dec"]
MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]  # Feb 29 never written
MONTH_START = [sum(MONTH_DAYS[:m]) for m in range(12)]
YEARS = list(range(2013, 2026))
YEAR_WEIGHTS = [1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 8, 11, 14]
YEAR_CUMULATIVE = list(itertools.accumulate(YEAR_WEIGHTS))

LAYOUT_NAMES = {1: "blank_lines", 2: "blank_lines_with_metadata", 3: "no_blank_lines"}
# One cycle of twenty dumps: 45% layout 2, 35% layout 1, 20% layout 3, shuffled per cycle.
LAYOUT_CYCLE = [2] * 9 + [1] * 7 + [3] * 4

VARIANT_KINDS = ["case", "punctuation", "dash", "quotes", "spaces", "period", "typo"]
VARIANT_WEIGHTS = [2, 2, 1, 1, 2, 2, 2]  # about 1/6 each; dash and quotes share one sixth
VARIANT_FALLBACK = ["case", "spaces", "period"]

HEADER_BLANK = ["new", "Get trending papers in your email inbox!", "Subscribe", "Daily Papers",
                "byAK and the research community"]
HEADER_DENSE_FIRST = "Get trending papers in your email inbox once a day!"
HEADER_DENSE = "Get trending papers in your email inbox!"

RECENT_CACHE = 4096  # papers whose text stays cached for cheap repeats of recent papers


# ---------------------------------------------------------------------------------------
# Templates: compiled once into parts, filled by drawing each slot.

VOWELS = frozenset("AEIOaeio")
NON_WORD = re.compile(r"[\W_]+")
SLOT = re.compile(r"\{(\w+?)\d?\}")


def compile_template(text: str):
    """Return a template as (parts, tail, repeats, starts_with_slot).

    Each part is (literal, kind, source, size, article). kind 0: a vocabulary list of
    `size` words, 1: a number drawer, 2: a value the caller gives (NAME). article: the
    literal ends with `a `, to be written `an ` before a vowel. repeats: some vocabulary
    list is drawn from twice (the draws are then kept apart).
    """
    parts, position, seen, repeats = [], 0, set(), False
    for match in SLOT.finditer(text):
        literal, slot = text[position:match.start()], match.group(1)
        if slot in VOCAB:
            kind, source = 0, VOCAB[slot]
            repeats = repeats or slot in seen
            seen.add(slot)
        elif slot in NUMBERS:
            kind, source = 1, NUMBERS[slot]
        else:
            kind, source = 2, slot
        article = literal == "a " or literal.endswith(" a ")
        size = len(source) if kind == 0 else 0
        parts.append((literal, kind, source, size, article))
        position = match.end()
    return tuple(parts), text[position:], repeats, text.startswith("{")


def _number(low: float, high: float, digits: int):
    return lambda rng: f"{rng.uniform(low, high):.{digits}f}"


NUMBERS = {
    "pct": _number(2.0, 38.0, 1),
    "r": _number(0.21, 0.89, 2),
    "acc": _number(61.0, 98.9, 1),
    "x": lambda rng: str(rng.choice([2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 32, 50, 100])),
    "nsubj": lambda rng: str(rng.choice([4, 8, 10, 12, 15, 20, 24, 30, 42, 64, 100, 128,
                                         300, 1200])),
    "nhours": lambda rng: str(rng.randint(5, 900)),
    "nparams": lambda rng: rng.choice(["1.2M", "4M", "7M", "25M", "86M", "120M", "350M",
                                       "1.3B", "3B", "7B"]),
    "nsess": lambda rng: str(rng.randint(2, 60)),
    "ntasks": lambda rng: str(rng.randint(3, 40)),
    "nneur": lambda rng: rng.choice(["1,000", "10,000", "40,000", "70,000", "250",
                                     "500", "2,500", "100,000"]),
    "year": lambda rng: str(rng.randint(2019, 2025)),
}

OPENING = [
    "Recordings such as {signal} offer a unique window into how the {area} supports {cogfunc}, "
    "yet {model_pl} "
    "trained on such data remain difficult to {verb} and compare across studies.",
    "Understanding how the {species} {area} represents {stim} is a central goal of "
    "{field}, and an increasingly important source of inspiration for {field2}.",
    "{model_pl} have achieved remarkable performance on {task}, but their {property} "
    "still lags far behind that of biological neural circuits.",
    "Recent advances in {technique} have made it possible to {verb} {stim} from {signal} "
    "at a scale that was out of reach only a few years ago.",
    "Despite decades of research, the computational principles underlying {cogfunc} in "
    "the {area} remain poorly understood.",
    "The brain performs {task} with striking {property} while consuming only a few watts, "
    "which has motivated a growing body of work on {adj} {model_pl}.",
    "{technique} and {technique2} are two of the most influential ideas linking {field} "
    "and {field2}, but they are rarely studied together.",
    "A long-standing hypothesis in {field} holds that {biomech} in the {area} is "
    "essential for {cogfunc}.",
    "{adj} {model_pl} are emerging as a promising alternative to {baseline} for {task}, "
    "particularly when deployed on {hardware}.",
    "Large-scale datasets such as {dataset} have transformed the study of {cogfunc} and "
    "enabled data-driven models of the {species} {area}.",
    "Whether {model_pl} and the {area} converge on similar solutions for {task} is an "
    "open question with implications for both {field} and {field2}.",
    "Modern {model_pl} learn rich internal representations, but it is unclear which "
    "aspects of these representations matter for {property}.",
]
GAP = [
    "However, existing approaches typically rely on {technique}, which limits their "
    "{property} across subjects, sessions and recording setups.",
    "Most prior work treats {task} and {task2} as separate problems, ignoring the shared "
    "{adj} structure of the underlying {signal}.",
    "A key obstacle is {challenge}, which prevents current {model_pl} from reaching their "
    "full potential.",
    "Yet little is known about how {biomech} interacts with {technique} when both operate "
    "at the same time.",
    "Current methods also struggle with {challenge}, and their {property} degrades "
    "quickly outside the training distribution.",
    "In practice, {challenge} makes it hard to train {adj} models end to end, and most "
    "pipelines fall back on {baseline}.",
    "Moreover, standard evaluations on {dataset} say little about whether a model truly "
    "captures {cogfunc}.",
    "These limitations are particularly severe for {signal}, where {challenge} dominates.",
]
APPROACH = [
    "In this work, we introduce {NAME}, a {adj} {model_sg} that combines {technique} with "
    "{technique2} to {verb} {stim} from {signal}.",
    "We propose {NAME}, a {adj} framework for {task} that couples a {component} with a "
    "{component2}.",
    "Here we present {NAME}, which treats {task} as a {adj} inference problem and solves it "
    "with {technique}.",
    "To address these issues, we develop {NAME}, a {adj} {model_sg} inspired by {biomech} "
    "in the {area}.",
    "We introduce {NAME}, the first {adj} {model_sg} trained jointly on {signal} and "
    "{signal2} from {nsubj} participants.",
    "Building on {technique}, we design {NAME}, a {adj} architecture in which {biomech} "
    "emerges from a {component}.",
    "We describe {NAME}, a {adj} recipe that turns pretrained {model_pl} into models of "
    "the {species} {area} with {technique}.",
]
DETAILS = [
    "The model is trained end to end with a {loss} objective on {nhours} hours of {signal} "
    "recorded across {nsess} sessions.",
    "A {component} first maps raw inputs to a shared latent space, after which a "
    "{component2} handles subject-specific variability.",
    "Inspired by {biomech}, we further add a {component} that modulates the {property} of "
    "the representation without extra supervision.",
    "Learning relies only on {technique}, so no gradients have to be propagated through "
    "time and every update is local in space.",
    "The architecture contains {nparams} parameters and runs in real time on {hardware}.",
    "We regularize the latent space with a {loss} term, which encourages {adj} codes "
    "aligned with known anatomy.",
    "Unlike previous work, {NAME} does not require {technique} and can be trained with "
    "{technique2} alone.",
    "Each input is tokenized into {adj} patches, and a {component} aggregates information "
    "over long temporal windows.",
    "We derive a closed-form analysis of the learning dynamics, showing that {technique} "
    "converges to a {adj} fixed point under mild assumptions.",
    "Training uses {ntasks} tasks presented sequentially, with {technique} applied "
    "between tasks to protect consolidated knowledge.",
]
EXPERIMENTS = [
    "We evaluate {NAME} on {dataset}, {dataset2} and {dataset3}, covering {task} and "
    "{task2}.",
    "Experiments on {dataset} show that {NAME} improves {metric} by {pct}% over {baseline} "
    "while using {x}x fewer parameters.",
    "Across {nsubj} subjects, the learned representations predict held-out {signal} "
    "responses with a mean {metric} of {r}.",
    "On {dataset}, {NAME} reaches {acc}% {metric}, a new state of the art among {adj} "
    "methods.",
    "When deployed on {hardware}, the model reduces energy consumption by {x}x at a cost of "
    "less than {pct}% in {metric}.",
    "In recordings of {nneur} neurons from {species} {area}, {NAME} recovers latent "
    "dynamics that match behavior on a single-trial basis.",
    "Zero-shot transfer to {dataset} yields a {metric} of {r}, close to the noise ceiling of "
    "the data.",
    "Compared with {baseline}, our approach is {x}x faster to train and markedly more "
    "stable across random seeds.",
]
ANALYSIS = [
    "Ablation studies reveal that the {component} is critical for {property}, whereas "
    "{technique} mainly affects {property2}.",
    "Representational similarity analysis further shows that {finding}.",
    "Interestingly, we find that {finding}, consistent with recordings from the {species} "
    "{area}.",
    "Analysis of the trained network indicates that {finding}.",
    "We also observe that {finding}, a property absent from {baseline}.",
    "Visualizations of the learned filters suggest that {finding}.",
]
CLOSING = [
    "These results suggest that {biomech} may provide a practical route toward {goal}.",
    "Our findings bridge {field} and {field2} and open new avenues for {goal}.",
    "Taken together, this work positions {adj} {model_pl} as a useful tool for studying "
    "{cogfunc}.",
    "We hope that {NAME} will serve as a foundation for {goal}.",
    "More broadly, our results highlight the value of {technique} for building {goal}.",
    "This work takes a step toward {goal} and provides testable predictions for "
    "experiments in the {area}.",
    "Overall, {NAME} demonstrates that {property} and {property2} need not be traded off "
    "in {model_pl}.",
]
CODE = [
    "Code and pretrained models are available at https://github.com/{user}/{NAMESLUG}.",
    "Our code is publicly available at https://github.com/{user}/{NAMESLUG}.",
    "The dataset and evaluation toolkit will be released to the community.",
    "All code, data and trained models are released under an open license.",
]

COMPILED = {
    name: [compile_template(t) for t in group]
    for name, group in [("opening", OPENING), ("gap", GAP), ("approach", APPROACH),
                        ("details", DETAILS), ("experiments", EXPERIMENTS),
                        ("analysis", ANALYSIS), ("closing", CLOSING), ("code", CODE),
                        ("subtitle", SUBTITLES), ("standalone", STANDALONE)]
}

SUBTITLE_TEMPLATES = COMPILED["subtitle"]
STANDALONE_TEMPLATES = COMPILED["standalone"]
NO_EXTRA: dict[str, str] = {}


def fill(rng: random.Random, template, extra: dict[str, str]) -> str:
    """Return a template with every slot drawn; a list drawn from twice gives two words."""
    parts, tail, repeats, _ = template
    out: list[str] = []
    used: set[str] = set()
    draw = rng.random
    for literal, kind, source, size, article in parts:
        if kind == 0:
            value = source[int(draw() * size)]
            if repeats:
                if value in used:
                    value = source[int(draw() * size)]
                used.add(value)
        elif kind == 1:
            value = source(rng)
        else:
            value = extra[source]
        if article and value[:1] in VOWELS:
            literal = literal[:-1] + "n "
        out.append(literal)
        out.append(value)
    out.append(tail)
    return "".join(out)


def sentence(rng: random.Random, template, extra: dict[str, str]) -> str:
    """Return a filled template as a sentence: its first word capitalized if need be."""
    text = fill(rng, template, extra)
    return capitalize_first(text) if template[3] else text


# ---------------------------------------------------------------------------------------
# Casing, keys and title variants.

def title_case(text: str) -> str:
    """Capitalize the words of a title, keeping small words and words written as-is (fMRI)."""
    words = text.split(" ")
    out = []
    previous = ""
    for index, word in enumerate(words):
        quote, core = ('"', word[1:]) if word.startswith('"') else ("", word)
        if index and core in SMALL_WORDS and not previous.endswith(":"):
            out.append(word)
        elif "-" in core:
            pieces = core.split("-")
            out.append(quote + "-".join(
                piece[:1].upper() + piece[1:]
                if piece[:1].islower() and piece.islower() and (not at or piece not in SMALL_WORDS)
                else piece
                for at, piece in enumerate(pieces)
            ))
        elif core[:1].islower() and core.islower():
            out.append(quote + core[:1].upper() + core[1:])
        else:
            out.append(word)
        previous = word
    return " ".join(out)


def sentence_case(text: str) -> str:
    """Capitalize the first word, and the first word after a colon."""
    words = text.split(" ")
    for index, word in enumerate(words):
        if index == 0 or words[index - 1].endswith(":"):
            quote, core = ('"', word[1:]) if word.startswith('"') else ("", word)
            if core[:1].islower() and core.replace("-", "").replace("'", "").isalpha():
                words[index] = quote + core[:1].upper() + core[1:]
    return " ".join(words)


def capitalize_first(text: str) -> str:
    """Capitalize a sentence's first word unless it is written otherwise (fMRI, iControl)."""
    first = text.split(" ", 1)[0]
    return text[:1].upper() + text[1:] if first[:1].islower() and first == first.lower() else text


def title_key(title: str) -> str:
    """The title with case, accents, punctuation and spacing erased (as the build does)."""
    if not title.isascii():
        title = unicodedata.normalize("NFKD", title)
        title = "".join(ch for ch in title if not unicodedata.combining(ch))
    return NON_WORD.sub(" ", title.casefold()).strip()


def key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def variant_title(rng: random.Random, title: str, kind: str) -> tuple[str, str] | None:
    """Return (title variant, kind) or None when this kind cannot change this title."""
    if kind == "case":
        options = [title.lower(), title.upper(), sentence_case(title.lower()),
                   title_case(title.lower())]
        rng.shuffle(options)
        for option in options:
            if option != title:
                return option, kind
        return None
    if kind == "punctuation":
        if ": " in title:
            changed = title.replace(": ", " - ", 1)
            if rng.random() < 0.3:
                changed = changed.replace(",", "")
            return changed, kind
        if "," in title:
            return title.replace(",", ""), kind
        return None
    if kind == "dash":
        if "-" not in title:
            return None
        dash = rng.choice(["\u2013", "\u2014"])
        if rng.random() < 0.5:
            return title.replace("-", dash), kind
        positions = [i for i, ch in enumerate(title) if ch == "-"]
        at = rng.choice(positions)
        return title[:at] + dash + title[at + 1:], kind
    if kind == "quotes":
        if "'" not in title and '"' not in title:
            return None
        changed = title.replace("'", "\u2019")
        opening = True
        while '"' in changed:
            changed = changed.replace('"', "\u201c" if opening else "\u201d", 1)
            opening = not opening
        return changed, kind
    if kind == "spaces":
        gaps = [i for i, ch in enumerate(title) if ch == " "]
        if not gaps:
            return None
        for at in sorted(rng.sample(gaps, min(len(gaps), rng.choice([1, 1, 2]))), reverse=True):
            title = title[:at] + " " + title[at:]
        return title, kind
    if kind == "period":
        if title.endswith((".", "?", "!")):
            return None
        return title + ".", kind
    if kind == "typo":
        words = [(i, w) for i, w in enumerate(title.split(" ")) if len(w) >= 5 and w.isalpha()]
        if not words:
            return None
        index, word = rng.choice(words)
        changed = typo(rng, word)
        parts = title.split(" ")
        parts[index] = changed
        return " ".join(parts), kind
    raise ValueError(kind)


def typo(rng: random.Random, word: str) -> str:
    """Return the word with one character substituted, dropped, doubled or swapped."""
    for _ in range(10):
        at = rng.randrange(1, len(word) - 1)
        operation = rng.randrange(4)
        if operation == 0:
            letter = rng.choice("aeioulnrst")
            letter = letter.upper() if word[at].isupper() else letter
            changed = word[:at] + letter + word[at + 1:]
        elif operation == 1:
            changed = word[:at] + word[at + 1:]
        elif operation == 2:
            changed = word[:at] + word[at] + word[at:]
        else:
            changed = word[:at] + word[at + 1] + word[at] + word[at + 2:]
        if changed != word:
            return changed
    return word[:1] + word[2:]


# ---------------------------------------------------------------------------------------
# Papers: everything about paper i is drawn from Random((seed << 40) + i).

@dataclass
class Meta:
    authors: int
    organization: str | None
    year: int
    month: int
    day: int


@dataclass
class PaperText:
    title: str
    abstract: str
    meta: Meta
    name: str | None


def pick(draw, items):
    """Return an item drawn with `draw` (a Random's random method): cheaper than choice."""
    return items[int(draw() * len(items))]


def draw_meta(rng: random.Random) -> Meta:
    draw = rng.random
    authors = min(20, 1 + int(rng.expovariate(1 / 4.5)))
    organization = pick(draw, ORGANIZATIONS) if draw() < 0.06 else None
    year = YEARS[bisect.bisect(YEAR_CUMULATIVE, draw() * YEAR_CUMULATIVE[-1])]
    month = int(draw() * 12)
    day = 1 + int(draw() * MONTH_DAYS[month])
    return Meta(authors, organization, year, month, day)


def draw_name(rng: random.Random) -> str:
    draw = rng.random
    form = draw()
    if form < 0.45:
        name = pick(draw, NAME_PREFIX) + pick(draw, NAME_SUFFIX)
    elif form < 0.6:
        name = pick(draw, NAME_PREFIX) + "-" + pick(draw, NAME_SUFFIX)
    elif form < 0.9:
        name = "".join(pick(draw, LETTERS) for _ in range(3 + int(draw() * 4)))
        if draw() < 0.2:
            name += "-" + pick(draw, NAME_SUFFIX)
    else:
        name = pick(draw, NAME_LOWER_PREFIX) + pick(draw, NAME_PREFIX) + pick(draw, NAME_SUFFIX)
    return name + pick(draw, NAME_TAIL)


def draw_title(rng: random.Random) -> tuple[str, str | None]:
    """Return a title of 4-20 words and 40-160 characters, and the name it gives the method."""
    draw = rng.random
    for _ in range(50):
        named = draw() < 0.55
        if named or draw() < 0.75:
            body = fill(rng, pick(draw, SUBTITLE_TEMPLATES), NO_EXTRA)
        else:
            body = fill(rng, pick(draw, STANDALONE_TEMPLATES), NO_EXTRA)
        name = draw_name(rng) if named else None
        text = f"{name}: {body}" if name else body
        text = title_case(text) if draw() < 0.7 else sentence_case(text)
        words = text.count(" ") + 1
        if 4 <= words <= 20 and 40 <= len(text) <= 160:
            return text, name
    return text, name


# The long tail of a real field's vocabulary: the templates above give every abstract the
# field's common words, but real abstracts also name the datasets, species, regions and
# methods of their niche, which a few dozen or a few thousand papers share. Each paper
# belongs to a niche drawn with Zipf's law (the niche of rank r in proportion to 1/r), names
# a few of its niche's terms and one term of the whole tail, so that at a million papers
# there are terms in every band of document frequency and papers of a niche share several,
# as related papers (found by shared distinctive words) need.
TAIL_ONSETS = ["b", "br", "c", "ch", "d", "dr", "f", "g", "gl", "h", "k", "kr", "l", "m", "n",
               "p", "pl", "qu", "r", "s", "st", "t", "tr", "v", "z"]
TAIL_VOWELS = ["a", "e", "i", "o", "u", "ai", "ei", "ou"]
TAIL_CODAS = ["", "l", "m", "n", "r", "s", "x", "nd", "rt", "sk"]
TAIL_SIZE = 100_000
NICHES = 20_000
NICHE_TERMS = 6  # terms of a niche
NAMED_TERMS = (2, 4)  # of them an abstract names, at least and at most


def make_tail() -> tuple[list[str], list[float]]:
    """Return the tail's pseudo-words in rank order and their cumulative Zipf weights."""
    syllables = [o + v + c for o in TAIL_ONSETS for v in TAIL_VOWELS for c in TAIL_CODAS]
    words = [a + b + "ic" for a, b in itertools.product(syllables, syllables)]
    random.Random(20_250_301).shuffle(words)
    return words[:TAIL_SIZE], list(itertools.accumulate(1 / rank for rank in range(1, TAIL_SIZE + 1)))


TAIL, TAIL_CUMULATIVE = make_tail()
NICHE_CUMULATIVE = TAIL_CUMULATIVE[:NICHES]


@functools.lru_cache(maxsize=NICHES)
def niche_terms(niche: int) -> list[str]:
    return random.Random(niche).sample(TAIL, NICHE_TERMS)


def tail_sentence(rng: random.Random) -> str:
    draw = rng.random
    niche = bisect.bisect(NICHE_CUMULATIVE, draw() * NICHE_CUMULATIVE[-1])
    count = NAMED_TERMS[0] + int(draw() * (NAMED_TERMS[1] - NAMED_TERMS[0] + 1))
    named = rng.sample(niche_terms(niche), count)
    named.append(TAIL[bisect.bisect(TAIL_CUMULATIVE, draw() * TAIL_CUMULATIVE[-1])])
    terms = sorted(set(named))
    listed = ", ".join(terms[:-1]) + " and " + terms[-1] if len(terms) > 1 else terms[0]
    return f"We also report results on {listed}."


def draw_abstract(rng: random.Random, name: str | None) -> str:
    """Return an abstract of 5-12 sentences, about 600-1,900 characters."""
    draw = rng.random
    mention = name or pick(draw, ["our model", "our approach", "the proposed method",
                                  "our framework", "the resulting model"])
    slug = (name or pick(draw, VOCAB["user"])).lower()
    if not slug.replace("-", "").isalnum():
        slug = re.sub(r"[^a-z0-9-]+", "", slug) or "code"
    extra = {"NAME": mention, "NAMESLUG": slug}
    plan = [("opening", 1 + (draw() < 1 / 3)), ("gap", 1 + (draw() < 1 / 3)), ("approach", 1),
            ("details", 1 + int(draw() * 3)), ("experiments", 1 + int(draw() * 3)),
            ("analysis", int(draw() * 3)), ("closing", 1), ("code", int(draw() < 0.3))]
    sentences: list[str] = []
    for role, count in plan:
        if count == 1:
            sentences.append(sentence(rng, pick(draw, COMPILED[role]), extra))
        elif count:
            for template in rng.sample(COMPILED[role], count):
                sentences.append(sentence(rng, template, extra))
    text = " ".join(sentences)
    while len(text) < 600 and len(sentences) < 12:
        sentences.insert(-1, sentence(rng, pick(draw, COMPILED["details"]), extra))
        text = " ".join(sentences)
    while len(sentences) > 12 or (len(text) > 1900 and len(sentences) > 5):
        sentences.pop(len(sentences) // 2 + 1)  # a middle sentence: details or results
        text = " ".join(sentences)
    sentences.insert(-1, tail_sentence(rng))
    return " ".join(sentences)


def swap_one_word(rng: random.Random, title: str, name: str | None) -> str | None:
    """Return the title with exactly one word replaced by another of its group."""
    words = title.split(" ")
    candidates = []
    for index, word in enumerate(words):
        core = word.rstrip(",:?.")
        if name and core == name:
            continue
        if core.lower() in SWAP and core.isalpha():
            candidates.append(index)
    if candidates:
        index = rng.choice(candidates)
        word = words[index]
        core = word.rstrip(",:?.")
        lower = core.lower()
        replacement = rng.choice([w for w in SWAP[lower] if w.lower() != lower])
        if replacement != replacement.lower():
            pass  # written as-is everywhere (fMRI, ECoG)
        elif core.isupper() and len(core) > 1:
            replacement = replacement.upper()
        elif core[:1].isupper():
            replacement = replacement[:1].upper() + replacement[1:]
        words[index] = replacement + word[len(core):]
        return " ".join(words)
    plain = [i for i, w in enumerate(words)
             if i and len(w) >= 4 and w.isalpha() and w.lower() not in SMALL_WORDS]
    if not plain:
        return None
    index = rng.choice(plain)
    replacement = rng.choice([w for w in SWAP_FALLBACK if w.lower() != words[index].lower()])
    words[index] = replacement if words[index][:1].isupper() else replacement.lower()
    return " ".join(words)


def cut_abstract(rng: random.Random, abstract: str) -> str:
    """Return the abstract cut at a word boundary, keeping 60-95% of it."""
    at = int(len(abstract) * rng.uniform(0.6, 0.95))
    space = abstract.find(" ", at)
    cut = abstract[:space] if space > 0 else abstract
    return cut.rstrip(" ,;:")


# ---------------------------------------------------------------------------------------
# The corpus.

@dataclass
class Entry:
    """One record of a dump, before it is written."""

    paper: int
    title: str
    abstract: str
    meta: Meta
    variant: str | None = None
    original: int = -1  # for a look-alike: the paper whose title it mimics
    cut: bool = False


@dataclass
class Dump:
    name: str
    layout: int
    page_date: tuple[int, int] | None  # (month index, day)
    entries: list[Entry]
    text: str = ""


class CorpusGenerator:
    """Draws dumps one at a time; the papers' texts are regenerated from their index."""

    def __init__(self, records: int, seed: int = 0, records_per_dump: int = 60,
                 duplicate_share: float = 0.25, lookalike_share: float = 0.02):
        if records < 1:
            raise ValueError("records must be at least 1")
        if records_per_dump < 1:
            raise ValueError("records_per_dump must be at least 1")
        if not 0 <= duplicate_share < 1 or not 0 <= lookalike_share < 1:
            raise ValueError("shares must be in [0, 1)")
        self.records = records
        self.seed = seed
        self.records_per_dump = records_per_dump
        self.duplicate_share = duplicate_share
        self.lookalike_share = lookalike_share
        self.rng = random.Random(seed)
        self.papers = 0
        self.keys: set[int] = set()
        self.overrides: dict[int, tuple[str, str | None]] = {}
        self.cache: dict[int, PaperText] = {}

    # papers -------------------------------------------------------------------------
    def paper_rng(self, index: int) -> random.Random:
        return random.Random((self.seed << 40) + index)

    def paper(self, index: int) -> PaperText:
        """Return paper `index` as first written (regenerated unless recently cached)."""
        cached = self.cache.get(index)
        if cached is not None:
            return cached
        rng = self.paper_rng(index)
        meta = draw_meta(rng)
        title, name = draw_title(rng)
        if index in self.overrides:
            title, name = self.overrides[index]
        return PaperText(title, draw_abstract(rng, name), meta, name)

    def remember(self, index: int, text: PaperText) -> None:
        self.cache[index] = text
        if len(self.cache) > RECENT_CACHE:
            del self.cache[next(iter(self.cache))]

    def claim(self, title: str) -> bool:
        """Register a title's key; False if a paper already has it."""
        digest = key_hash(title_key(title))
        if digest in self.keys:
            return False
        self.keys.add(digest)
        return True

    def new_paper(self) -> PaperText:
        index = self.papers
        rng = self.paper_rng(index)
        meta = draw_meta(rng)
        title, name = draw_title(rng)
        if not self.claim(title):
            base = title
            while True:
                suffix = fill(self.rng, compile_template(self.rng.choice(
                    [" in {species} {area}", " with {technique}", " for {task}",
                     " on {hardware}", " under {property} constraints", " at scale"])), {})
                title = base + (title_case(suffix) if base != base.lower() else suffix)
                if self.claim(title):
                    break
            self.overrides[index] = (title, name)
        text = PaperText(title, draw_abstract(rng, name), meta, name)
        self.papers += 1
        self.remember(index, text)
        return text

    def lookalike_paper(self, original: int) -> PaperText | None:
        source = self.paper(original)
        for _ in range(10):
            title = swap_one_word(self.rng, source.title, source.name)
            if title and self.claim(title):
                break
        else:
            return None
        index = self.papers
        rng = self.paper_rng(index)
        meta = draw_meta(rng)
        draw_title(rng)  # keeps the paper's stream as regeneration replays it
        name = source.name if source.name and source.name in title else None
        self.overrides[index] = (title, name)
        text = PaperText(title, draw_abstract(rng, name), meta, name)
        self.papers += 1
        self.remember(index, text)
        return text

    # dumps --------------------------------------------------------------------------
    def dump_sizes(self):
        """Yield the number of records of each dump: 2/3 to 4/3 of records_per_dump, but
        the last, which has records_per_dump exactly (the incremental benchmark adds it: the
        issue's "one new 60-record dump")."""
        last = min(self.records_per_dump, self.records)
        left, low = self.records - last, max(1, round(self.records_per_dump * 2 / 3))
        high = max(low, round(self.records_per_dump * 4 / 3))
        while left > 0:
            size = self.rng.randint(low, high)
            if left - size < low:
                size = left if left <= high else left - low
            size = min(size, left)
            left -= size
            yield size
        yield last

    def dumps(self):
        """Yield the dumps in name order, each with its entries and its text."""
        rng = self.rng
        cycle: list[int] = []
        duplicate_p: float | None = None
        for number, size in enumerate(self.dump_sizes()):
            if not cycle:
                cycle = LAYOUT_CYCLE[:]
                rng.shuffle(cycle)
            layout = cycle.pop()
            if duplicate_p is None:
                # The first dump cannot repeat anything: the others make up for it.
                rest = self.records - size
                duplicate_p = min(0.9, self.duplicate_share * self.records / rest) if rest else 0.0
                share = 0.0
            else:
                share = duplicate_p
            entries = self.dump_entries(size, share)
            if layout == 3 and not self.glue_first(entries):
                layout = 1
            page_date = None
            if layout != 3:
                month = rng.randrange(12)
                page_date = (month, rng.randint(1, MONTH_DAYS[month]))
            dump = Dump(f"{number:06d}_synthetic.txt", layout, page_date, entries)
            dump.text = self.render(dump)
            yield dump

    def dump_entries(self, size: int, duplicate_p: float) -> list[Entry]:
        rng = self.rng
        earlier = self.papers  # papers first seen in earlier dumps
        in_dump: set[int] = set()
        entries: list[Entry] = []
        for _ in range(size):
            draw = rng.random()
            entry = None
            if draw < duplicate_p and earlier:
                entry = self.repeat_entry(earlier, in_dump)
            elif draw < duplicate_p + self.lookalike_share and self.papers:
                original = self.pick_earlier(self.papers)
                text = self.lookalike_paper(original)
                if text is not None:
                    entry = Entry(self.papers - 1, text.title, text.abstract, text.meta,
                                  original=original)
            if entry is None:
                text = self.new_paper()
                entry = Entry(self.papers - 1, text.title, text.abstract, text.meta)
            in_dump.add(entry.paper)
            entries.append(entry)
        return entries

    def pick_earlier(self, limit: int) -> int:
        rng = self.rng
        if rng.random() < 0.4:
            return max(0, limit - 1 - int(rng.expovariate(1 / 150)))
        return rng.randrange(limit)

    def repeat_entry(self, earlier: int, in_dump: set[int]) -> Entry | None:
        rng = self.rng
        for _ in range(12):
            index = self.pick_earlier(earlier)
            if index not in in_dump:
                break
        else:
            return None
        text = self.paper(index)
        entry = Entry(index, text.title, text.abstract, text.meta)
        if rng.random() < 0.5:
            kind = rng.choices(VARIANT_KINDS, VARIANT_WEIGHTS)[0]
            changed = variant_title(rng, text.title, kind)
            if changed is None:
                fallbacks = VARIANT_FALLBACK[:]
                rng.shuffle(fallbacks)
                for kind in fallbacks:
                    changed = variant_title(rng, text.title, kind)
                    if changed is not None:
                        break
            if changed is not None and changed[0] != text.title:
                entry.title, entry.variant = changed
        if rng.random() < 0.1:
            entry.abstract = cut_abstract(rng, text.abstract)
            entry.cut = entry.abstract != text.abstract
        return entry

    @staticmethod
    def glue_first(entries: list[Entry]) -> bool:
        """Put first a record whose title can be glued to `Subscribe`; False if none can."""
        for position, entry in enumerate(entries):
            if entry.title[:1].isupper() or entry.title[:1].isdigit():
                if position:
                    entries.insert(0, entries.pop(position))
                return True
        return False

    # text ---------------------------------------------------------------------------
    def render(self, dump: Dump) -> str:
        rng = self.rng
        out: list[str] = []
        if dump.layout == 3:
            if rng.random() < 0.7:
                out.append(HEADER_DENSE_FIRST + "\n")
            out.append(HEADER_DENSE + "\n")
            out.append("Subscribe")
            for entry in dump.entries:
                out.append(f"{entry.title}\n{entry.abstract}\n")
        else:
            month, day = dump.page_date
            for line in HEADER_BLANK:
                out.append(line + "\n\n")
            out.append(f"{MONTH_NAMES[month]} {day}\n\n")
            any_metadata = False
            for position, entry in enumerate(dump.entries):
                out.append(f"{entry.title}\n\n{entry.abstract}\n\n")
                if dump.layout == 2:
                    block = self.metadata_block(entry.meta, dump.page_date,
                                                force=position == len(dump.entries) - 1
                                                and not any_metadata)
                    if block:
                        any_metadata = True
                        out.append(block)
        text = "".join(out)
        if rng.random() < 0.5:  # real dumps often lack the final newline
            text = text.rstrip("\n")
        elif dump.layout != 3:
            text = text.rstrip("\n") + "\n"
        return text

    def metadata_block(self, meta: Meta, page_date: tuple[int, int], force: bool) -> str:
        rng = self.rng
        if not force and rng.random() < 0.03:
            return ""
        lines = []
        if meta.organization:
            lines.append(meta.organization)
        elif force or rng.random() >= 0.02:
            lines.append(f"  \u2022 {meta.authors} authors")
        if meta.organization or rng.random() >= 0.015:
            lines.append("\u00b7")
        if rng.random() >= 0.02:
            if rng.random() < 0.15:
                month, day = self.yearless_date(page_date)
                line = f"{MONTH_NAMES[month]} {day}"
            else:
                line = f"{MONTH_NAMES[meta.month]} {meta.day}, {meta.year}"
            if rng.random() < 0.3:
                line += f" {min(999, int(rng.paretovariate(1.1)))}"
            lines.append(line)
        return "\n".join(lines) + "\n\n" if lines else ""

    def yearless_date(self, page_date: tuple[int, int]) -> tuple[int, int]:
        """Return a date of the capture year on or before the page date."""
        month, day = page_date
        day_of_year = MONTH_START[month] + day - 1
        back = min(day_of_year, int(self.rng.expovariate(1 / 25)))
        day_of_year -= back
        month = max(m for m in range(12) if MONTH_START[m] <= day_of_year)
        return month, day_of_year - MONTH_START[month] + 1


def generate_corpus(out_dir: Path, records: int, seed: int = 0, records_per_dump: int = 60,
                    duplicate_share: float = 0.25, lookalike_share: float = 0.02) -> dict:
    """Write synthetic dumps into out_dir and return (and save) the truth about them.

    The truth goes to `out_dir.parent / f"{out_dir.name}-truth.json"`: records, dumps,
    papers (distinct), sightings (the paper index of every record, in dump-name order
    then page order), variants ([record, kind] for repeats whose title differs from
    the original), lookalikes ([record, original paper]), plus seed, dump_records,
    dump_layouts (the parser's layout names) and cut_abstracts (records whose
    abstract was cut short).
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.glob("*.txt")):
        raise FileExistsError(f"{out_dir}: already holds *.txt dumps; use an empty folder")
    generator = CorpusGenerator(records, seed, records_per_dump, duplicate_share,
                                lookalike_share)
    sightings: list[int] = []
    variants: list[list] = []
    lookalikes: list[list[int]] = []
    cut: list[int] = []
    dump_records: list[int] = []
    dump_layouts: list[str] = []
    for dump in generator.dumps():
        for entry in dump.entries:
            record = len(sightings)
            sightings.append(entry.paper)
            if entry.variant:
                variants.append([record, entry.variant])
            if entry.original >= 0:
                lookalikes.append([record, entry.original])
            if entry.cut:
                cut.append(record)
        dump_records.append(len(dump.entries))
        dump_layouts.append(LAYOUT_NAMES[dump.layout])
        with open(out_dir / dump.name, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(dump.text)
    truth = {
        "records": len(sightings), "dumps": len(dump_records), "papers": generator.papers,
        "seed": seed, "sightings": sightings, "variants": variants, "lookalikes": lookalikes,
        "cut_abstracts": cut, "dump_records": dump_records, "dump_layouts": dump_layouts,
    }
    truth_path = out_dir.parent / f"{out_dir.name}-truth.json"
    truth_path.write_text(json.dumps(truth, separators=(",", ":")), encoding="utf-8")
    return truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generate",
        description="Write synthetic NeuroAI Daily Papers dumps and their truth file.",
    )
    parser.add_argument("out_dir", type=Path, help="folder for the dumps (created; must hold no *.txt)")
    parser.add_argument("--records", type=int, required=True, help="records to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--records-per-dump", type=int, default=60)
    parser.add_argument("--duplicate-share", type=float, default=0.25)
    parser.add_argument("--lookalike-share", type=float, default=0.02)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        truth = generate_corpus(args.out_dir, args.records, args.seed, args.records_per_dump,
                                args.duplicate_share, args.lookalike_share)
    except (FileExistsError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    out_dir = args.out_dir.resolve()
    print(
        f"wrote {truth['records']:,} records in {truth['dumps']:,} dumps to {out_dir}: "
        f"{truth['papers']:,} papers, {truth['records'] - truth['papers']:,} repeats "
        f"({len(truth['variants']):,} with a title variant), "
        f"{len(truth['lookalikes']):,} look-alikes; truth in "
        f"{out_dir.parent / (out_dir.name + '-truth.json')} ({seconds:.1f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
