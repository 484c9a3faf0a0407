"""Registries where users add their own parts (heads, pre-training tasks, students) by name,
without editing the library: ``REG = Registry("head")``, then ``@REG.register("name", "alias")``
on a class; ``REG["name"]`` gives it back."""

__all__ = ["Registry"]


class Registry(dict):
    """name -> class. A name taken by another class is an error (two plug-ins that would silently
    replace each other); registering the same class again is allowed (a module imported twice)."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def register(self, name, *aliases):
        def deco(cls):
            for key in (name,) + aliases:
                if key in self and self[key] is not cls:
                    raise ValueError(f"{self.kind} {key!r} is already registered to {self[key].__name__}")
                self[key] = cls
            return cls
        return deco

    def build(self, name, *args, **kwargs):
        if name not in self:
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {sorted(self)}")
        return self[name](*args, **kwargs)
